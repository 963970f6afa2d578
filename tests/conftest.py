"""Shared fixtures: fresh caches per test, and the database choice for the suite."""

import pytest
from django.core.cache import cache

from workflows_app.queries import catalog, subscriptions
from workflows_app.web import rendered


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch):
    """Process caches hold rows by primary key; a rolled-back test must not leak them (a
    subscription rolled back is not saved or deleted, so no signal forgets it), nor its counts
    of requests per address (the suite's default cache is in memory).

    Within a test the caches of services and subscriptions do not expire on their own: a test
    that warms them and then counts statements must not see one more when a slow or loaded
    machine lets their few seconds run out in between (CI once counted an extra read of the
    subscriptions). Changes made in the test still reach them through their signals."""
    monkeypatch.setattr(catalog, "SERVICE_TTL_SECONDS", 3600.0)
    monkeypatch.setattr(subscriptions, "SUBSCRIPTION_TTL_SECONDS", 3600.0)
    catalog.clear()
    subscriptions.forget()
    rendered.clear()
    cache.clear()
    yield
    catalog.clear()
    subscriptions.forget()
    rendered.clear()


@pytest.fixture(autouse=True)
def _python_steps_where_they_ship(request, settings):
    """Python steps run in the caller after its commit, as the site runs them by default;
    tests of the worker path (a step sent through the queue) say so: @pytest.mark.worker_path."""
    if request.node.get_closest_marker("worker_path"):
        settings.HMS_INLINE_PYTHON_STEPS = False


def pytest_configure(config):
    """Fast password hashing: tests create many users and never need real strength."""
    from django.conf import settings
    from django.test import TestCase

    from tests.committing import CommittingClient

    # A request's work after its commit (python steps in the caller, queue messages) happens
    # in tests too, as in production (tests/committing.py).
    TestCase.client_class = CommittingClient

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
    # The suite's HTTP services listen on 127.0.0.1; tests of the refusal override this.
    settings.HMS_PRIVATE_URL_ALLOW = ["127.0.0.0/8", "::1"]


@pytest.fixture(scope="session", autouse=True)
def _empty_redis_queue():
    """On the Redis broker, start from an empty queue: old messages must not reach a cluster."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


@pytest.fixture(autouse=True)
def _documents_in_a_scratch_folder(settings, tmp_path_factory):
    """Uploaded documents go to a folder of this test run, never to var/documents."""
    location = tmp_path_factory.mktemp("documents")
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
