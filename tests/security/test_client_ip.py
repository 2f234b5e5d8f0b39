"""The client's address behind a reverse proxy (settings.TRUSTED_PROXY_COUNT): without a proxy a forged
X-Forwarded-For changes neither the access log nor the sign-in lockout; behind one, both see the client the proxy
reports, so two people behind one proxy are locked out apart."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.test import RequestFactory
from django.urls import reverse

from roster.client_ip import client_ip
from roster.models import AccessAction, AccessLogEntry

PASSWORD = "a-long-test-password"  # tests.factories.roster.UserFactory's
SCHOOL_IP, PROXY_IP = "10.8.0.1", "10.0.0.2"
CLIENT_A, CLIENT_B = "198.51.100.7", "198.51.100.8"


def sign_in(client, password=PASSWORD, *, remote, forwarded=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client.post(
        reverse("login"), {"username": "counselor_a1", "password": password}, REMOTE_ADDR=remote, **extra
    )


def failed_sign_in_logged_from():
    return AccessLogEntry.objects.filter(action=AccessAction.LOGIN_FAILED).latest("pk").ip


# --- No proxy (the default): the header is the client's own words ------------------------------------------------


def test_without_a_trusted_proxy_a_forged_header_is_ignored_in_the_access_log(client, world, settings):
    assert settings.TRUSTED_PROXY_COUNT == 0
    sign_in(client, "wrong-password-1", remote=SCHOOL_IP, forwarded="203.0.113.66")
    assert failed_sign_in_logged_from() == SCHOOL_IP


def test_without_a_trusted_proxy_changing_the_forged_header_does_not_escape_the_lockout(client, world):
    for n in range(4):
        response = sign_in(client, "wrong-password-1", remote=SCHOOL_IP, forwarded=f"203.0.113.{n}")
        assert response.status_code == 200
    assert sign_in(client, "wrong-password-1", remote=SCHOOL_IP, forwarded="203.0.113.99").status_code == 429
    again = sign_in(client, remote=SCHOOL_IP, forwarded="192.0.2.1")
    assert again.status_code == 429 and SESSION_KEY not in client.session
    assert set(AccessAttempt.objects.values_list("username", "ip_address")) == {("counselor_a1", SCHOOL_IP)}


# --- Behind one proxy: the entry it appended ------------------------------------------------------------------


@pytest.fixture
def behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1


def test_behind_a_proxy_the_access_log_records_the_forwarded_client(client, world, behind_one_proxy):
    # The client wrote the first entry itself; the proxy appended the address it saw.
    sign_in(client, "wrong-password-1", remote=PROXY_IP, forwarded=f"203.0.113.66, {CLIENT_A}")
    assert failed_sign_in_logged_from() == CLIENT_A


def test_behind_a_proxy_two_clients_are_locked_out_apart(client, world, behind_one_proxy):
    for _ in range(4):
        assert sign_in(client, "wrong-password-1", remote=PROXY_IP, forwarded=CLIENT_A).status_code == 200
    assert sign_in(client, "wrong-password-1", remote=PROXY_IP, forwarded=CLIENT_A).status_code == 429
    assert sign_in(client, remote=PROXY_IP, forwarded=CLIENT_A).status_code == 429
    # The same person at another computer behind the same proxy.
    assert sign_in(client, remote=PROXY_IP, forwarded=CLIENT_B).status_code == 302
    assert SESSION_KEY in client.session
    assert AccessAttempt.objects.get().ip_address == CLIENT_A


# --- The rule itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "10.0.0.2", "198.51.100.7", "10.0.0.2"),  # no proxy trusted: the header is ignored
        (1, "10.0.0.2", "198.51.100.7", "198.51.100.7"),
        (1, "10.0.0.2", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # what the client prepended is not believed
        (2, "10.0.0.3", "1.2.3.4, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        (2, "10.0.0.3", "198.51.100.7", "10.0.0.3"),  # fewer entries than proxies: not through all of them
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        (1, "10.0.0.2", "2001:DB8:0:0::7", "2001:db8::7"),
        (0, "", None, None),  # e.g. a Unix socket without an address
    ],
)
def test_the_client_is_the_entry_that_many_proxies_from_the_right(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **extra)) == expected
