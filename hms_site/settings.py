"""Settings for HMS Workflow Orchestration.

One file. The environment sets only what differs per deployment (docs/deploy.md lists
every variable): the database, the broker, secrets, hosts, the public URL, mail, and the
limits an operator chooses (workers per machine, the longest a step may run, sign-in limits).
Tuning constants (leases, timer intervals, health thresholds) are fixed here as settings with
their reasons; tests that start processes shorten them through tests/process_settings.py.
"""

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _language_name(code: str) -> str:
    from django.conf.locale import LANG_INFO

    return LANG_INFO.get(code, {}).get("name", code)


DEBUG = _env_bool("DEBUG", True)
SECRET_KEY = os.environ.get(
    "SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789"
)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "workflows_app",
]

MIDDLEWARE = [
    # Outermost: a database that cannot be reached or written answers 503, never 500.
    "workflows_app.web.unavailable.UnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: a body over its view's limit is refused before anything reads it.
    "workflows_app.web.uploads.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workflows_app.web.ratelimit.LoginRateLimitMiddleware",
]

ROOT_URLCONF = "hms_site.urls"
WSGI_APPLICATION = "hms_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
            "libraries": {"moments": "workflows_app.web.moments"},
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite by default. WAL, a busy timeout and IMMEDIATE transactions let the web server and
# several qcluster processes share the file without "database is locked" (docs/queue.md).
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
# SQLite: persistent connections (60 s): a new connection per request costs more than its
# queries (open, PRAGMAs, schema parse, a cold page cache; docs/BENCHMARKS.md). PostgreSQL:
# a pool per process instead (below).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection it lends
    # PostgreSQL: psycopg's pool in every process (Django requires CONN_MAX_AGE 0 with it), so
    # a web or qcluster process holds at most DATABASE_POOL_SIZE connections however many
    # threads it serves; a request that waits DATABASE_POOL_TIMEOUT seconds for one gets a
    # 503 with Retry-After. Size: processes x pool size <= max_connections (docs/deploy.md).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "4")),
        "timeout": float(os.environ.get("DATABASE_POOL_TIMEOUT", "10")),
    }
# Seconds a client is told to wait (Retry-After) when the database cannot be reached or written.
HMS_UNAVAILABLE_RETRY_AFTER = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Queue (django-q2) ----------------------------------------------------------------------
# Our rows are the source of truth: django-q2 never retries our jobs (max_attempts=1,
# ack_failures), our own step-run rows hold attempts, backoff and leases.
# Ordering that keeps one step run in one worker at a time (docs/queue.md):
#   HTTP read timeout < task timeout < step lease, and task timeout < broker retry.
REDIS_URL = os.environ.get("REDIS_URL", "")
# The longest one job may run (an operator's limit: raise it for slow services).
HMS_TASK_TIMEOUT = int(os.environ.get("HMS_TASK_TIMEOUT", "90"))
# Seconds a worker holds a claimed step run before the timer gives it to another worker.
HMS_STEP_LEASE_SECONDS = HMS_TASK_TIMEOUT + 10
# Seconds after enqueueing before the timer re-enqueues a message that was never taken.
HMS_REDELIVERY_SECONDS = 60
Q_CLUSTER = {
    "name": "hms",
    "workers": int(os.environ.get("HMS_WORKERS", "2")),
    "timeout": HMS_TASK_TIMEOUT,
    "retry": HMS_TASK_TIMEOUT + 30,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 1000,
    "queue_limit": 50,
    "catch_up": False,
    "poll": 0.2,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# Cluster stats live in the cache, so every process must share it (docs/queue.md).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        # The embedded default runs on one machine: a file cache is shared by its processes.
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(BASE_DIR / "var" / "cache"),
        }
    )
}

# --- Workflows ------------------------------------------------------------------------------
HMS_PUBLIC_URL = os.environ.get("HMS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Service URLs must lead to public addresses (queries/addresses.py): private, loopback and
# link-local ones are refused when saved, loaded and connected to, except those allowed
# (address or network, optionally :port). Development allows the demo service of `make run`.
HMS_REFUSE_PRIVATE_URLS = _env_bool("HMS_REFUSE_PRIVATE_URLS", True)
HMS_PRIVATE_URL_ALLOW = _env_list("HMS_PRIVATE_URL_ALLOW", "127.0.0.1:9001" if DEBUG else "")
HMS_PYTHON_SERVICES = _env_list("HMS_PYTHON_SERVICES", "workflows_app.builtin")
# How often the timer thread of each qcluster worker looks for due step runs.
HMS_TIMER_INTERVAL = 0.5
# Seconds a qcluster's queue may stay locked by a killed worker before a live one frees it.
HMS_WEDGE_SECONDS = 3.0
HMS_MAX_BODY_BYTES = 1024 * 1024
# Anonymous starts of public workflows (web/throttle.py): the largest payload, and how many
# starts one client address may make per window (429 with Retry-After beyond it).
HMS_PUBLIC_MAX_PAYLOAD_BYTES = int(os.environ.get("HMS_PUBLIC_MAX_PAYLOAD_BYTES", 64 * 1024))
HMS_PUBLIC_STARTS_PER_WINDOW = int(os.environ.get("HMS_PUBLIC_STARTS_PER_WINDOW", "20"))
HMS_PUBLIC_WINDOW_SECONDS = int(os.environ.get("HMS_PUBLIC_WINDOW_SECONDS", "3600"))
# Case-number look-ups on /track/ that find nothing, per client address and window.
HMS_LOOKUPS_PER_WINDOW = int(os.environ.get("HMS_LOOKUPS_PER_WINDOW", "20"))
HMS_LOOKUP_WINDOW_SECONDS = int(os.environ.get("HMS_LOOKUP_WINDOW_SECONDS", "600"))
# A claimed task nobody acted on goes back to its group after this many seconds.
HMS_CLAIM_RELEASE_SECONDS = 4 * 3600
# Reminders to the assignee at these fractions of the time allowed.
HMS_REMINDER_FRACTIONS = (0.5, 0.9)
# Calls to one HTTP service in flight at once in one qcluster (runtime/concurrency.py), unless
# the service sets its own `concurrency`: one worker per cluster always stays free for other
# services, however long one hangs. A run over the limit waits about HMS_SLOT_WAIT_SECONDS.
HMS_SERVICE_CONCURRENCY = int(
    os.environ.get("HMS_SERVICE_CONCURRENCY", max(1, Q_CLUSTER["workers"] - 1))
)
HMS_SLOT_WAIT_SECONDS = 1.0
# How long a run waits for a free slot before going back (runtime/concurrency.py): longer
# than a fast service's call, far shorter than a slow one's.
HMS_SLOT_GRACE_SECONDS = float(os.environ.get("HMS_SLOT_GRACE_SECONDS", "0.25"))
# Where a cluster's slots are (one small lock file per service and slot; runtime/concurrency.py).
HMS_SLOT_DIR = os.environ.get("HMS_SLOT_DIR", str(BASE_DIR / "var" / "slots"))
# A python step that follows a start, decision or callback runs in the caller's process after
# its commit (as Camunda and viewflow do), not after a queue hop; false: always via a worker.
HMS_INLINE_PYTHON_STEPS = _env_bool("HMS_INLINE_PYTHON_STEPS", True)
# Email assignees about new, reminded, escalated and reassigned tasks.
HMS_NOTIFY_TASKS = _env_bool("HMS_NOTIFY_TASKS", True)
# Where a task goes when its escalation ladder has run out.
HMS_SUPERVISORS_GROUP = "Supervisors"

# --- Auth, i18n, static, email --------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/tasks/"
# Sign-in rate limit (workflows_app/web/ratelimit.py): failures per (client IP, username) in the
# shared cache; HMS_CLIENT_IP_HEADER (e.g. HTTP_X_FORWARDED_FOR) only behind a proxy that sets it.
HMS_LOGIN_MAX_ATTEMPTS = int(os.environ.get("HMS_LOGIN_MAX_ATTEMPTS", "5"))
HMS_LOGIN_WINDOW_SECONDS = int(os.environ.get("HMS_LOGIN_WINDOW_SECONDS", "900"))
HMS_CLIENT_IP_HEADER = os.environ.get("HMS_CLIENT_IP_HEADER", "")
HMS_LOGIN_CACHE = "default"  # the cache alias holding the counts; every process must share it

# The languages of the citizen pages and emails (docs/pages.md, Languages): HMS_LANGUAGES,
# comma-separated codes with a catalogue in locale/ (or Django's own); the first is the default.
# A definition's language maps may use these codes only (docs/definitions.md).
HMS_LANGUAGES = _env_list("HMS_LANGUAGES", "en,es")
LANGUAGE_CODE = HMS_LANGUAGES[0]
LANGUAGES = [(code, _language_name(code)) for code in HMS_LANGUAGES]
LANGUAGE_COOKIE_NAME = "hms_language"  # the switch's choice, remembered a year
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
FORMAT_MODULE_PATH = ["hms_site.formats"]  # dates as each language writes them
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Brussels")
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

# --- Documents (docs/api.md, documents) -----------------------------------------------------
# Files applicants send are kept in the `documents` storage: a folder under var/ by default,
# or any Django storage backend, e.g. HMS_DOCUMENT_STORAGE=storages.backends.s3.S3Storage
# with HMS_DOCUMENT_STORAGE_OPTIONS='{"bucket_name": "hms-documents"}' (django-storages,
# installed by the operator). They are never served by a path of their own: views check access.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "documents": {
        "BACKEND": os.environ.get(
            "HMS_DOCUMENT_STORAGE", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": json.loads(os.environ.get("HMS_DOCUMENT_STORAGE_OPTIONS", "") or "{}")
        or {"location": str(BASE_DIR / "var" / "documents")},
    },
}
# The largest document accepted ("10MB", "512KB"; binary multiples). Only the upload endpoints
# (the API's documents and the applicant's answer on the tracker) read bodies this large;
# everything else stops at HMS_MAX_BODY_BYTES.
HMS_MAX_UPLOAD = os.environ.get("HMS_MAX_UPLOAD", "10MB")

# Records (docs/records.md): how long personal data of an ended application is kept when its
# workflow sets no `retention` (P7Y, 90d, ...); empty keeps it until a workflow says otherwise.
HMS_RETENTION = os.environ.get("HMS_RETENTION", "")
# How long the emailed link to answer a request stays valid; a new one can be asked for from
# the tracker, at most HMS_RESPOND_LINKS_PER_HOUR times an hour per application.
HMS_RESPOND_LINK_SECONDS = 14 * 86400
HMS_RESPOND_LINKS_PER_HOUR = 3

# Django 6.1 mailers: the console in development; EMAIL_BACKEND/EMAIL_HOST... in production.
MAILERS = {
    "default": {
        "BACKEND": os.environ.get(
            "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
        ),
        "OPTIONS": {
            key.lower(): value
            for key, value in {
                "HOST": os.environ.get("EMAIL_HOST"),
                "PORT": os.environ.get("EMAIL_PORT"),
                "USERNAME": os.environ.get("EMAIL_HOST_USER"),
                "PASSWORD": os.environ.get("EMAIL_HOST_PASSWORD"),
            }.items()
            if value
        },
    }
}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "no-reply@hms.example")

# Every page: a CSP without inline scripts; tracking links do not leak through Referer.
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Health (/healthz) ----------------------------------------------------------------------
# Who reads monitoring detail (the checks of /healthz) besides tokens of scope `metrics`:
# addresses or networks (CONTRACT §6). Everyone else is told only "ok" or "unhealthy".
HMS_METRICS_ALLOW = _env_list("HMS_METRICS_ALLOW", "127.0.0.1")
# Each worker's timer thread records a tick at most every 10 s, so a "timer" tick older than
# this means no worker is polling (stopped or frozen); keep it well above 10 s.
HMS_HEALTH_STALE_SECONDS = 60
# The scheduled sweep runs every minute from django-q2's scheduler (passes ~30 s apart).
HMS_HEALTH_SWEEP_STALE_SECONDS = 300

# --- Production (DEBUG=false): a real secret, HTTPS only, real mail (docs/deploy.md) -------
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
if not DEBUG and SECRET_KEY in ("", _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "DEBUG is false but SECRET_KEY is missing or is the development key: set the "
        "SECRET_KEY environment variable to a long random value, the same on every web and "
        "qcluster machine (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
_PRODUCTION = not DEBUG
# Each may be turned off by its variable, e.g. SECURE_SSL_REDIRECT=false when a proxy redirects.
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", _PRODUCTION)
# Load balancers probe health over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", _PRODUCTION)
CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", _PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000 if _PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _PRODUCTION)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", _PRODUCTION)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if _env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")

# Production sends real mail: SMTP (EMAIL_HOST, default localhost) unless EMAIL_BACKEND is set.
if _PRODUCTION and "EMAIL_BACKEND" not in os.environ:
    MAILERS["default"]["BACKEND"] = "django.core.mail.backends.smtp.EmailBackend"
if MAILERS["default"]["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend":
    _smtp = MAILERS["default"]["OPTIONS"]
    _smtp.setdefault("host", "localhost")
    if "port" in _smtp:
        _smtp["port"] = int(_smtp["port"])
    _smtp["use_tls"] = _env_bool("EMAIL_USE_TLS", False)
    _smtp["use_ssl"] = _env_bool("EMAIL_USE_SSL", False)
    # A worker sending mail must not hang past its step lease.
    _smtp["timeout"] = int(os.environ.get("EMAIL_TIMEOUT", "10"))
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- Operations and records (issue 17, ops-a): history of changes, webhooks, sign-in --------
# Who changed services, calendars, tokens and groups, and when (docs/history.md): the
# middleware hands the signed-in user to django-simple-history.
INSTALLED_APPS += ["simple_history"]
MIDDLEWARE += ["simple_history.middleware.HistoryRequestMiddleware"]
# Status webhooks (docs/webhooks.md): the request time-out and how long a sender's claim on
# one instance's messages holds (longer than a call, so a live sender is never overtaken).
HMS_WEBHOOK_TIMEOUT = float(os.environ.get("HMS_WEBHOOK_TIMEOUT", "10"))
HMS_WEBHOOK_LEASE_SECONDS = int(os.environ.get("HMS_WEBHOOK_LEASE_SECONDS", "60"))
HMS_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("HMS_WEBHOOK_MAX_ATTEMPTS", "20"))
# Optional staff sign-in through OpenID Connect (docs/deploy.md): on when OIDC_RP_CLIENT_ID
# is set; the password sign-in stays for the demo and for break-glass accounts.
OIDC_ENABLED = bool(os.environ.get("OIDC_RP_CLIENT_ID"))
if OIDC_ENABLED:
    INSTALLED_APPS += ["mozilla_django_oidc"]
    AUTHENTICATION_BACKENDS = [
        "mozilla_django_oidc.auth.OIDCAuthenticationBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    OIDC_RP_CLIENT_ID = os.environ["OIDC_RP_CLIENT_ID"]
    OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
    OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
    OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
    OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
    OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
    OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
    # Staff accounts are made by an administrator (with their groups), not by signing in.
    OIDC_CREATE_USER = _env_bool("OIDC_CREATE_USER", False)
    LOGIN_REDIRECT_URL = os.environ.get("OIDC_LOGIN_REDIRECT_URL", "/tasks/")
