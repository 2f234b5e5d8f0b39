"""The portal's wrong-code limit holds across workers: without Redis the cache is the database, which every web
worker and the task worker share, and the count neither loses tries nor forgets them early there."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from screening import views_portal
from tests.screening.test_portal import campaign as campaign  # noqa: F401, PLC0414 (a fixture)
from tests.screening.test_portal import code as code  # noqa: F401, PLC0414 (a fixture)
from tests.screening.test_portal import enter

# One worker process of a deployment without Redis: the real settings, its own interpreter and cache connection.
WORKER = """
import sys

import django

django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import RequestFactory

from screening import views_portal

request = RequestFactory().post("/s/", REMOTE_ADDR="198.51.100.7")
if sys.argv[1] == "guess":
    call_command("createcachetable", verbosity=0)
    for _ in range(views_portal.FAILED_CODES_PER_ADDRESS):
        views_portal._count_failure(request)
print(settings.CACHES["default"]["BACKEND"], views_portal._too_many_failures(request))
"""


def run_worker(role: str, database: Path) -> str:
    env = {name: value for name, value in os.environ.items() if name not in ("REDIS_URL", "DATABASE_URL", "DEBUG")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="x" * 50, DATABASE_URL=f"sqlite:///{database}")
    done = subprocess.run([sys.executable, "-c", WORKER, role], cwd=django_settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_wrong_codes_counted_by_one_worker_stop_the_next_worker(tmp_path):
    database = tmp_path / "db.sqlite3"
    assert run_worker("guess", database).endswith(" True")  # 60 wrong codes through one worker: it refuses
    # Another process (another gunicorn worker) refuses the same address too: the count is not per process.
    assert run_worker("check", database) == "django.core.cache.backends.db.DatabaseCache True"


@pytest.fixture(autouse=True)
def fresh_portal_pages():
    yield
    views_portal._shell.cache_clear()  # the refusal page rendered here is no template render for a later test


@pytest.fixture
def database_cache(settings, db):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "xinqiao_cache_test"}
    }
    call_command("createcachetable", verbosity=0)  # rolled back with the test


def minutes_pass(monkeypatch, minutes: int) -> None:
    """The database cache judges expiry by its clock: move it on."""
    from django.core.cache.backends import db as db_cache
    from django.utils import timezone

    monkeypatch.setattr(db_cache, "tz_now", lambda: timezone.now() + timedelta(minutes=minutes))


def test_the_wrong_code_window_lasts_ten_minutes_on_the_database_cache(client, code, campaign, database_cache,
                                                                       monkeypatch):  # fmt: skip
    for _ in range(views_portal.FAILED_CODES_PER_ADDRESS):
        assert enter(client, "ZZZZZZZZ").status_code == 200
    assert enter(client, code.code).status_code == 429
    minutes_pass(monkeypatch, 6)
    assert enter(client, code.code).status_code == 429  # still within the ten minutes of the first wrong code
    minutes_pass(monkeypatch, 11)
    assert enter(client, code.code).status_code == 200
