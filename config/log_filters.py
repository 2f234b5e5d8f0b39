"""Logging filters wired by settings.LOGGING. Imported by nothing but the logging configuration."""

import logging


def client_errors_without_traceback(record: logging.LogRecord) -> bool:
    """django.request logs a refused request (403, 404) with the exception's traceback, which says nothing the one
    line does not (the status and the path) and buries real errors: keep the line, drop the traceback. Server errors
    (5xx) keep theirs."""
    status = getattr(record, "status_code", None)
    if status is not None and status < 500:
        record.exc_info = None
        record.exc_text = None
    return True
