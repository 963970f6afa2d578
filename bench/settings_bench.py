"""Settings of the benchmark runs: the site's own, plus a one-row baseline view and a SQL counter.

The baseline view lives only in bench/urls_bench.py, never in the app's URLs. The file cache
of the SQLite runs gets its own folder, so benchmark processes never share it with a
developer's `make run`. With HMS_BENCH_SQL_LOG set, every process appends one line per
statement it sends (bench/sqlcount.py).
"""

import os

from hms_site.settings import *  # noqa: F403
from hms_site.settings import BASE_DIR, CACHES, REDIS_URL

ROOT_URLCONF = "bench.urls_bench"
DEBUG = False
# The benchmarks' HTTP services listen on 127.0.0.1 (service URLs must otherwise be public).
HMS_PRIVATE_URL_ALLOW = ["127.0.0.0/8", "::1"]
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"django-q": {"level": "INFO"}},
}
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend", "OPTIONS": {}}}
if not REDIS_URL:
    CACHES["default"]["LOCATION"] = str(BASE_DIR / "bench" / "results" / "cache")

if os.environ.get("HMS_BENCH_SQL_LOG"):
    from django.db.backends.signals import connection_created

    from bench.sqlcount import install

    connection_created.connect(install, dispatch_uid="hms-bench-sqlcount")
