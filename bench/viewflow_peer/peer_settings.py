"""The viewflow peer's Django project: the seed's shape as a viewflow 2.4 flow (bench only).

Runs only inside bench/.venv-viewflow (viewflow is AGPL: never a dependency of the project).
The database comes from VIEWFLOW_DATABASE_URL; the same kind of database, connection ages
and SQLite options as our own runs.
"""

import os

import dj_database_url

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Brussels"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "viewflow",
    "viewflow.workflow",
    "permit",
]
DATABASES = {"default": dj_database_url.parse(os.environ["VIEWFLOW_DATABASE_URL"], conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "permit.urls"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
