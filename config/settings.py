"""Project settings: one module, every deployment difference read from the environment.

Environment variables (all optional in development, see README):
  DEBUG             "1" for development. Off by default, so a forgotten variable fails safe.
  SECRET_KEY        required when DEBUG is off; with DEBUG on a per-checkout key is generated.
  ALLOWED_HOSTS     comma-separated host names.
  DATABASE_URL      default: SQLite file db.sqlite3 in the project folder; postgres://... in production.
  REDIS_URL         when set, django-q2 and the cache use Redis instead of the database.
  SITE_URL          the address staff open (links in alert emails), e.g. https://xinqiao.example.edu.cn
  EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL
                    the SMTP server for red-alert emails (development prints them on the worker's console).
  ADMINS, SERVER_EMAIL  who receives server-error mails (comma-separated addresses), and their sender.
  UPLOAD_MAX_MB, UPLOAD_MAX_ROWS  limits of imported spreadsheets (default 20 MB, 200,000 rows).
  TRUSTED_PROXY_COUNT  how many reverse proxies in front append to X-Forwarded-For (default 0: the header is
                    ignored and the client is REMOTE_ADDR; 1 behind one nginx).
  ROSTER_IMPORT_KEEP_HOURS  how long an uploaded roster file waits for its confirmation (default 24).
  EXPORT_BACKGROUND_ROWS, EXPORT_KEEP_HOURS, EXPORT_ROOT  exports above this many rows run in the task worker;
                    their files are kept this many hours (default 5000, 24) in this folder (default var/exports).
  EMERGENCY_ACCESS_HOURS  how long an emergency ("break the glass") access to a case lasts (default 24).
  REPORT_MIN_CELL         reports below school level show counts of fewer students as "<N" (default 5).
  EMERGENCY_ACCESS_DAILY_LIMIT  emergency-access attempts one person may make in 24 hours (default 5).
  AUDIT_ANCHOR_FILE  where the task worker anchors the access log's head (default var/audit-anchor.log).
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core -----------------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)


def _schema_only_command() -> bool:
    argv = [os.path.basename(a) for a in sys.argv[:2]]
    return len(argv) == 2 and argv[0] in ("manage.py", "django-admin") and argv[1] in SCHEMA_ONLY_COMMANDS


SCHEMA_ONLY_COMMANDS = ("makemigrations", "showmigrations", "sqlmigrate")


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if not DEBUG and _schema_only_command():
        # `manage.py makemigrations --check` and friends read only the models and sign nothing: a throwaway key lets
        # them run on a bare checkout. Everything else still refuses to start without SECRET_KEY.
        return secrets.token_urlsafe(50)
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (50+ random characters) or set DEBUG=1 for development."
        )
    # Development only: one key per checkout, kept out of git, so sessions survive restarts and the web server
    # and the task worker sign with the same key.
    key_file = BASE_DIR / ".dev-secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Keys the access log's hash chain (roster.audit). Keep it apart from the database and its backups; without it the
# chain is keyed from SECRET_KEY.
AUDIT_LOG_KEY = os.environ.get("AUDIT_LOG_KEY", "")
# The access log's anchor (roster.audit.record_anchor): every five minutes the task worker appends the chain's head and
# entry count here, signed with the audit key, where the database's owner cannot rewrite them; `verify_audit_log`
# compares the log with it. Put it on storage the database role cannot write, and ship it off the host
# (docs/SECURITY.md, "The audit anchor").
AUDIT_ANCHOR_FILE = os.environ.get("AUDIT_ANCHOR_FILE") or str(BASE_DIR / "var" / "audit-anchor.log")
# Keys the hash of each student's national student number (全国学籍号, roster.identity), the only form it is kept in.
# Set it once per deployment and never change it: a new key makes every stored number unmatchable. Without it the
# hash is keyed from SECRET_KEY.
STUDENT_ID_KEY = os.environ.get("STUDENT_ID_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "roster.admin_config.ScopedAdminConfig",  # django.contrib.admin with the scoped site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "viewflow",  # templates, static files and template tags of the workflow frontend
    "viewflow.workflow",  # Process and Task models
    "django_q",
    "simple_history",
    "import_export",
    "axes",  # sign-in lockout after repeated failures
    "django_otp",
    "django_otp.plugins.otp_totp",  # TOTP authenticator apps (roster.two_factor)
    # Ours, bottom layer first: roster <- screening <- cases <- workflows.
    "roster",
    "screening",
    "cases",
    "workflows",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",  # Content-Security-Policy; no-store for signed-in people
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.locale.ChineseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "roster.audit.AuditRequestMiddleware",  # the request id, address and browser of access-log entries
    "roster.audit.ReadOnlyAuditorsMiddleware",  # auditors change nothing
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): this session passed a TOTP code
    "django.contrib.messages.middleware.MessageMiddleware",
    "roster.sessions.SessionLifetimeMiddleware",  # signed out SESSION_ABSOLUTE_AGE after signing in
    "roster.two_factor.TwoFactorMiddleware",  # the TOTP code before anything else, for those who need one
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into its page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "roster.context_processors.notifications",  # unread count in the top bar (lazy)
                "roster.context_processors.duty_roster",  # the duty-roster link in the top bar (no query)
                "workflows.context_processors.case_work",  # the inbox link in the top bar (lazy)
                "workflows.context_processors.site_nav",  # the one header's links, on every page (lazy)
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # IMMEDIATE transactions serialise writers instead of failing with "database is locked" (web server and
    # task worker share the file); WAL lets readers continue while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# --- Authentication -------------------------------------------------------------------------------------------

AUTH_USER_MODEL = "roster.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in before the password is checked
    "django.contrib.auth.backends.ModelBackend",
    "roster.auth_backends.RolePermissionBackend",  # roles at a school as object permissions (Viewflow task queues)
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# A set-password link an administrator sends (roster.services.password_reset_link_send) works once, within a day.
PASSWORD_RESET_TIMEOUT = 24 * 60 * 60
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # The names and codes of the person's school, district and city, and this system's own words.
    {"NAME": "roster.password_validation.ContextWordsValidator", "OPTIONS": {"words": ["xinqiao", "xinli", "心理"]}},
]

# Sign-in lockout (django-axes): 5 wrong passwords for one username from one address lock that pair for 30 minutes;
# never by address alone (a whole school signs in from one address), never by username alone (anyone could lock a
# colleague out from anywhere). A success clears the count. Attempts during a lockout do not extend it.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_DISABLE_ACCESS_LOG = True  # roster.audit logs every sign-in and sign-out already
# The address is the one the access log records (roster.client_ip): behind TRUSTED_PROXY_COUNT proxies, the client's
# from X-Forwarded-For, never a header the client wrote itself.
AXES_CLIENT_IP_CALLABLE = "roster.client_ip.client_ip"

# Sessions (roster.sessions): signed out after 30 minutes without a request (the session's expiry is pushed on at most
# once a minute, not written at every request) and 10 hours after signing in whatever happens; deactivating a person
# or changing their password ends all their sessions at once. Sessions live in the database (Django's default
# engine), where they can be deleted.
SESSION_COOKIE_AGE = 30 * 60
SESSION_ABSOLUTE_AGE = 10 * 60 * 60

# Two-factor sign-in (roster.two_factor): a TOTP code for city and district roles and superusers, optional for the
# others. Off only where nobody has a phone: the test settings (tests/security turn it back on) and `make demo`
# (TWO_FACTOR_ENFORCED=0 in the Makefile).
TWO_FACTOR_ENFORCED = env_bool("TWO_FACTOR_ENFORCED", True)
OTP_TOTP_ISSUER = "xinqiao"

# --- Internationalisation -------------------------------------------------------------------------------------

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
# viewflow's UI strings live apart: our `makemessages --no-obsolete` would drop them from locale/ (which wins clashes)
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_viewflow"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Security (secure by default; each can be relaxed from the environment, e.g. behind a TLS proxy) -----------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# Reverse proxies in front of the application that each append the address they were reached from to
# X-Forwarded-For: the client's address is that many entries from the right (roster.client_ip; the access log, the
# sign-in lockout, the portal's wrong-code limit). 0 trusts no header: without a proxy, a client could forge it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself; otherwise a client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# __Secure-: a browser accepts these cookies only over HTTPS with the Secure flag, so a page on plain HTTP (or a
# man in the middle) cannot plant one. The plain names where the cookies are not Secure (DEBUG, or relaxed above).
SESSION_COOKIE_NAME = "__Secure-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Secure-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"  # case and result ids in our URLs never reach another site
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Error reports (mail to ADMINS) carry no POST data, query strings, cookies or secrets (config/security.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.security.NoPersonalDataReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.security.NoPersonalDataReporter"

# --- Background tasks (django-q2) and cache -------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER = {
    "name": "xinqiao",
    "label": _("Background tasks"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 300,
    "retry": 360,  # must exceed timeout, or a slow task runs twice
    "max_attempts": 3,
    "catch_up": False,  # after downtime, run a missed schedule once, not once per missed slot
    "ack_failures": True,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    Q_CLUSTER["orm"] = "default"  # no extra server needed
    # Shared by every web worker and the task worker: the portal's wrong-code limit counts per address across all of
    # them (a per-process cache gave each worker its own 60 tries). `migrate` creates the table (roster.apps).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "xinqiao_cache",
            "OPTIONS": {"MAX_ENTRIES": 50_000},  # culling past it drops a third of the keys, live counters too
        }
    }

# --- Domain rules kept in settings ----------------------------------------------------------------------------

# School codes: the district's 6-digit administrative division code followed by a 4-digit school number.
SCHOOL_CODE_RULE = {
    "length": env_int("SCHOOL_CODE_LENGTH", 10),
    "division_prefix_length": 6,
}

# School hours when a school sets none of its own (School.day_starts/day_ends), "HH:MM-HH:MM" local time: a crisis alert
# goes to the school's on-duty psychology teacher within them, to the district's duty line outside (roster.duty).
SCHOOL_HOURS_DEFAULT = tuple(os.environ.get("SCHOOL_HOURS_DEFAULT", "07:30-17:30").split("-", 1))

# The tier rules (DESIGN §3, the crisis loop): each tier's team, every human step's deadline, the overdue chain, the
# closure chain, and the crisis alerts' windows and levels. Data, validated at start (a bad file stops the project with
# every problem listed); read only through cases/tiers.py. Empty: the shipped cases/tier_rules.yaml, which documents
# every key. A deployment copies that file, changes it and points this at the copy.
CASE_TIER_RULES_FILE = os.environ.get("CASE_TIER_RULES_FILE", "")

# --- Logging: never personal data at INFO (names, phones, answers stay out of log lines) ------------------------

# Server errors mail the ADMINS ("ops@example.cn,…"); without ADMINS no mail is sent. The mail names the path and the
# exception, never POST data (DEFAULT_EXCEPTION_REPORTER above).
ADMINS = [(address, address) for address in env_list("ADMINS")]
SERVER_EMAIL = os.environ.get("SERVER_EMAIL") or os.environ.get("DEFAULT_FROM_EMAIL", "xinqiao@localhost")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        # A 403 or 404 is one line (status and path), without the traceback Django attaches; 5xx keep theirs.
        "client_errors_without_traceback": {
            "()": "django.utils.log.CallbackFilter",
            "callback": "ext://config.log_filters.client_errors_without_traceback",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's own loggers (django.request: 5xx as errors, 4xx as warnings, naming the path only): the console
    # through root, and errors by mail when ADMINS is set. Replaces Django's default handlers for "django".
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_errors_without_traceback"], "propagate": True},
    },
}

# Uploaded spreadsheets (roster.uploads, used by every import): larger files, more rows, or XLSX files that unpack
# too large are refused with a message before anything is read. A 200,000-row roster is 17 MB as CSV, 9 MB as XLSX.
# Django itself caps only the form fields besides files (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB, left as is); the
# proxy in front should refuse bodies over this size too (docs/SECURITY.md).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_MB", 20) * 1024 * 1024
UPLOAD_MAX_ROWS = env_int("UPLOAD_MAX_ROWS", 200_000)
# Roster files with more rows than this are checked and imported by the background worker, with a progress bar.
ROSTER_IMPORT_BACKGROUND_ROWS = env_int("ROSTER_IMPORT_BACKGROUND_ROWS", 5000)
# An uploaded roster (a school's names, ids and phone numbers) is kept in its ImportJob only until it is imported: a
# file not confirmed, or a failed import not run again, within these hours is deleted by the daily sweep
# (roster.import_jobs.sweep_abandoned_imports), which also removes upload temporary files left that long.
ROSTER_IMPORT_KEEP_HOURS = env_int("ROSTER_IMPORT_KEEP_HOURS", 24)
# An export (a ledger's XLSX) of more rows than this is written by the task worker, with a progress page and a
# notification when it is ready (roster.exports); smaller ones are answered at once. A city's key-help ledger took
# about 2 s in the request (issue 18); a ledger row costs about 0.7-0.9 ms (benchmarks/export_bench.py), so 1,000 rows
# keep the request under a second.
EXPORT_BACKGROUND_ROWS = env_int("EXPORT_BACKGROUND_ROWS", 1000)
# A finished export (named students' cases) can be downloaded for these hours, then the hourly sweep deletes it.
EXPORT_KEEP_HOURS = env_int("EXPORT_KEEP_HOURS", 24)
# Finished exports, outside STATIC_ROOT and never served by the web server (roster.views_exports hands them over).
# The web server and the task worker must share this folder.
EXPORT_ROOT = os.environ.get("EXPORT_ROOT") or str(BASE_DIR / "var" / "exports")
# Files the demo commands write for a walk-through (seed_case_demo: a class list that stages a school move).
DEMO_OUTPUT_DIR = os.environ.get("DEMO_OUTPUT_DIR") or str(BASE_DIR / "var" / "demo")
# Reports below the school level show a count of fewer than this many students as "<5" (screening.suppression).
REPORT_MIN_CELL = env_int("REPORT_MIN_CELL", 5)
# "Break the glass": how long an emergency access to a case outside one's scope lasts (cases.EmergencyAccess).
EMERGENCY_ACCESS_HOURS = env_int("EMERGENCY_ACCESS_HOURS", 24)
# Attempts (granted or refused) one person may make in 24 hours: the glass is for a crisis, not for browsing by number.
EMERGENCY_ACCESS_DAILY_LIMIT = env_int("EMERGENCY_ACCESS_DAILY_LIMIT", 5)
SCREENING_PORTAL_URL = "/s/"  # printed on access-code slips
# Absolute links in emails, which the task worker sends without a request to take the host from.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Email (red alerts). Development prints mail to the worker's console; production names its SMTP server. -------
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "xinqiao@localhost")
# A cell like =HYPERLINK(...) in a roster must not run in Excel. import-export's own escaping drops one leading "="
# only; the admin's export formats put every cell through roster.spreadsheets.safe_cell first (roster/admin.py).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# import-export keeps a checked file in the temporary folder until it is confirmed: under a name of ours, so that the
# daily sweep can remove the ones never confirmed (roster.uploads.ImportTempStorage).
IMPORT_EXPORT_TMP_STORAGE_CLASS = "roster.uploads.ImportTempStorage"
