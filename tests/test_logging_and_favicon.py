"""Small things a new user tripped over (issue 18, item 12): a refused request is one log line, not a traceback,
while a server error keeps its traceback; every page names the product's icon and /favicon.ico finds it."""

import logging

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import include, path, reverse

from config.log_filters import client_errors_without_traceback


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("boom")


# The site's own URLs too: its middleware names some of them.
urlpatterns = [path("forbidden/", forbidden), path("broken/", broken), path("", include("config.urls"))]


def request_records(caplog):
    return [r for r in caplog.records if r.name == "django.request"]


@pytest.mark.urls("tests.test_logging_and_favicon")
def test_a_refused_request_is_logged_as_one_line_and_a_server_error_with_its_traceback(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/forbidden/").status_code == 403
    (refused,) = request_records(caplog)
    assert refused.levelno == logging.WARNING and refused.getMessage() == "Forbidden (Permission denied): /forbidden/"
    assert refused.exc_info is None and "Traceback" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/broken/").status_code == 500
    (error,) = request_records(caplog)
    assert error.levelno == logging.ERROR and error.exc_info is not None
    assert "Traceback" in caplog.text and "RuntimeError: boom" in caplog.text


@pytest.mark.parametrize(("status", "keeps_traceback"), [(403, False), (404, False), (400, False), (500, True)])
def test_the_filter_drops_the_traceback_of_client_errors_only(status, keeps_traceback):
    try:
        raise PermissionDenied
    except PermissionDenied as error:
        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "x", (), (type(error), error, None))
    record.status_code = status
    assert client_errors_without_traceback(record) is True  # the line itself is always kept
    assert (record.exc_info is not None) is keeps_traceback


def test_favicon_ico_leads_to_the_products_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"


@pytest.mark.parametrize("page", ["portal:start", "portal:help", "login"])
def test_pages_name_the_products_icon(client, db, page):
    body = client.get(reverse(page)).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body
