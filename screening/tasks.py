"""django-q2 task entry points of the screening app: thin wrappers over services, queued by dotted name."""

# --- Red alerts (screening.alerts) ------------------------------------------------------------------------------


def red_alert_send(result_id: int, attempt: int = 1) -> int:
    """Queued by screening.alerts.red_alert_enqueue when a red result is recorded; scheduled again for failed emails."""
    from screening.alerts import red_alert_send as send

    return send(result_id, attempt)


# --- Flagged results (screening.results_import) -------------------------------------------------------------------


def results_flagged_send(result_ids: list[int]) -> int:
    """Queued after a large import or re-scoring: sends `student_flagged` for each result (cases, red alerts)."""
    from screening.results_import import results_flagged_send as send

    return send(result_ids)
