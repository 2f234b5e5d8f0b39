"""Settings come from the environment; production settings pass `check --deploy` with no warning."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "SECRET_KEY": "p" * 20 + "-Kx9!zQ2@vL7#rT4$wN8%yB3^mD6&hF1*jS5",
    "ALLOWED_HOSTS": "xinli.example.edu.cn",
    "DEBUG": "0",
}


def _run(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def _settings(**env):
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'name': str(s.DATABASES['default']['NAME']),"
        "'q': sorted(s.Q_CLUSTER), 'cache': s.CACHES['default']['BACKEND'], 'tz': s.TIME_ZONE,"
        "'lang': s.LANGUAGE_CODE, 'hosts': s.ALLOWED_HOSTS, 'debug': s.DEBUG}))"
    )
    result = _run("-c", code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = _run("manage.py", "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_debug_a_missing_secret_key_refuses_to_start():
    result = _run("manage.py", "check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_without_secret_key_uses_a_stable_development_key():
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    first, second = _run("-c", code, DEBUG="1"), _run("-c", code, DEBUG="1")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) >= 50
    assert first.stdout == second.stdout


def test_defaults_are_sqlite_in_the_project_folder_the_orm_broker_and_chinese():
    s = _settings(**PRODUCTION)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(ROOT / "db.sqlite3")
    assert "orm" in s["q"] and "redis" not in s["q"]
    assert (s["tz"], s["lang"], s["hosts"], s["debug"]) == ("Asia/Shanghai", "zh-hans", ["xinli.example.edu.cn"], False)


def test_database_url_and_redis_url_switch_to_postgresql_and_redis():
    s = _settings(
        **PRODUCTION, DATABASE_URL="postgres://app@db.internal:5432/xinqiao", REDIS_URL="redis://127.0.0.1:6379/1"
    )
    assert (s["engine"], s["name"]) == ("django.db.backends.postgresql", "xinqiao")
    assert "redis" in s["q"] and "orm" not in s["q"]
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"


def test_the_migration_check_runs_on_a_bare_checkout_without_a_secret():
    result = _run("manage.py", "makemigrations", "--check", "--dry-run", DEBUG="0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
