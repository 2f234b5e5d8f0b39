"""Settings for pytest: the real settings module with a fixed throwaway key and fast hashing.

Everything else (database, Redis) still comes from the environment, so CI runs the same suite on PostgreSQL.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-insecure-key-for-pytest-never-used-in-production-000")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests create many users
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405  background tasks run inline in tests
if not REDIS_URL:  # noqa: F405
    # One process, emptied before each test (tests/conftest.py), and no cache queries in the pages' query budgets.
    # The shared default is tested in tests/security/test_shared_limits.py.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The access log's anchor file (roster.audit): one per test run, removed after each test (tests/conftest.py).
AUDIT_ANCHOR_FILE = os.path.join(tempfile.gettempdir(), f"xinqiao-test-audit-anchor-{os.getpid()}.log")
# Background exports (roster.exports) write their files here, never into the checkout's var/.
EXPORT_ROOT = os.path.join(tempfile.gettempdir(), f"xinqiao-test-exports-{os.getpid()}")
DEMO_OUTPUT_DIR = os.path.join(tempfile.gettempdir(), f"xinqiao-test-demo-{os.getpid()}")
SECURE_SSL_REDIRECT = False
# Sign-in lockout (django-axes) stays on: its backend needs the request, so tests sign in by posting the login form,
# or with client.force_login(); client.login() passes no request and is refused (pass request=HttpRequest()).
# The TOTP step would stop every force_login() of a district or city persona: off here, on in tests/security.
TWO_FACTOR_ENFORCED = False
