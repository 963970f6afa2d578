"""Settings from the environment (CONTRACT §6): production values pass `check --deploy` with no
warning, the development secret is refused in production, and each variable lands where the
code reads it. Each case runs in a fresh process, since settings are read once at import."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_BACKEND",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_USE_TLS",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "CSRF_TRUSTED_ORIGINS",
    "HMS_HEALTH_STALE_SECONDS",
)
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-for-tests-only-7Qx9vLr2Tz5Wm8Ny4Bc6Hd1Jf0Gs3Pa7Ke9Ui2Oq5",
    "ALLOWED_HOSTS": "hms.example.org",
}
SHOW = """
import json
from django.conf import settings as s
mail = s.MAILERS["default"]
print(json.dumps({
    "DEBUG": s.DEBUG, "ALLOWED_HOSTS": s.ALLOWED_HOSTS, "ENGINE": s.DATABASES["default"]["ENGINE"],
    "DB": [s.DATABASES["default"][k] for k in ("NAME", "HOST", "PORT", "USER")],
    "BROKER": "redis" if "redis" in s.Q_CLUSTER else "orm", "CACHE": s.CACHES["default"],
    "MAIL": mail, "SSL_REDIRECT": s.SECURE_SSL_REDIRECT, "HSTS": s.SECURE_HSTS_SECONDS,
    "COOKIES_SECURE": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],
    "PROXY_HEADER": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS, "STALE": s.HMS_HEALTH_STALE_SECONDS,
}, default=str))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run python with only `env` set among the deployment variables."""
    # Browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; no deployment has it.
    dropped = {*VARIABLES, "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update(env, DJANGO_SETTINGS_MODULE="hms_site.settings")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def settings_under(**env: str) -> dict:
    done = run(["-c", SHOW], **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class DeployCheckTests(SimpleTestCase):
    def test_production_settings_pass_check_deploy_with_no_warning(self):
        done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "System check identified no issues (0 silenced)." in done.stdout
        assert "WARNING" not in done.stdout + done.stderr

    def test_production_refuses_to_start_without_a_secret_key(self):
        env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
        done = run(["manage.py", "check"], **env)
        assert done.returncode != 0
        assert "ImproperlyConfigured: DEBUG is false but SECRET_KEY is missing" in done.stderr

    def test_production_refuses_the_development_secret_key(self):
        dev_key = "dev-only-insecure-key-change-me-in-production-0123456789"
        done = run(["manage.py", "check"], **{**PRODUCTION, "SECRET_KEY": dev_key})
        assert done.returncode != 0
        assert "or is the development key" in done.stderr


class EnvironmentTests(SimpleTestCase):
    def test_without_variables_the_development_defaults_serve_localhost(self):
        shown = settings_under()
        assert shown["DEBUG"] is True
        assert shown["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "testserver"]
        assert shown["ENGINE"] == "django.db.backends.sqlite3"
        assert (shown["BROKER"], shown["SSL_REDIRECT"], shown["HSTS"]) == ("orm", False, 0)
        assert shown["MAIL"]["BACKEND"] == "django.core.mail.backends.console.EmailBackend"

    def test_production_is_https_only_and_sends_mail_by_smtp(self):
        shown = settings_under(
            **PRODUCTION, EMAIL_HOST="smtp.example.org", EMAIL_PORT="587", EMAIL_USE_TLS="true"
        )
        assert (shown["DEBUG"], shown["ALLOWED_HOSTS"]) == (False, ["hms.example.org"])
        assert shown["SSL_REDIRECT"] is True and shown["COOKIES_SECURE"] == [True, True]
        assert shown["HSTS"] == 31536000
        assert shown["MAIL"] == {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": "smtp.example.org",
                "port": 587,
                "use_tls": True,
                "use_ssl": False,
                "timeout": 10,
            },
        }

    def test_behind_a_tls_proxy_the_redirect_can_be_left_to_the_proxy(self):
        shown = settings_under(
            **PRODUCTION,
            SECURE_SSL_REDIRECT="false",
            SECURE_PROXY_SSL_HEADER="true",
            CSRF_TRUSTED_ORIGINS="https://hms.example.org",
        )
        assert shown["SSL_REDIRECT"] is False
        assert shown["PROXY_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
        assert shown["CSRF_TRUSTED_ORIGINS"] == ["https://hms.example.org"]

    def test_database_and_redis_urls_choose_postgresql_and_the_redis_broker_and_cache(self):
        shown = settings_under(
            DATABASE_URL="postgres://hms:pw@db.internal:5433/hms",
            REDIS_URL="redis://cache.internal:6379/2",
            HMS_HEALTH_STALE_SECONDS="45",  # a tuning constant: the environment cannot move it
        )
        assert shown["ENGINE"] == "django.db.backends.postgresql"
        assert shown["DB"] == ["hms", "db.internal", 5433, "hms"]
        assert shown["BROKER"] == "redis"
        assert shown["CACHE"] == {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://cache.internal:6379/2",
        }
        assert shown["STALE"] == 60
