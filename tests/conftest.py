"""Shared fixtures: fresh caches per test, and the database choice for the suite."""

import pytest

from workflows_app.queries import catalog


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Process caches hold rows by primary key; a rolled-back test must not leak them."""
    catalog.clear()
    yield
    catalog.clear()


def pytest_configure(config):
    """Fast password hashing: tests create many users and never need real strength."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Failed sign-ins in tests must not count against later runs in the shared cache.
    # Each test run has its own cache: snapshots (the board) must not outlive the run.
    settings.CACHES = {
        **settings.CACHES,
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "login-attempts": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "login-attempts",
        },
    }
    settings.HMS_LOGIN_CACHE = "login-attempts"
    # Most tests drive the worker path one message at a time (StandInQueue, run_queued), so a
    # python step after a start or a decision waits in the queue here. The caller path that
    # the site uses by default is tested in test_inline.py, and the real-cluster, chaos and
    # browser-server processes run with the default.
    settings.HMS_INLINE_PYTHON_STEPS = False


@pytest.fixture(scope="session", autouse=True)
def _empty_redis_queue():
    """On the Redis broker, start from an empty queue: old messages must not reach a cluster."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield
