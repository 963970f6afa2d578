"""Tests see what production sees after a commit.

A TestCase never commits (each test runs in one transaction that is rolled back), so work
our code defers with `transaction.on_commit` (python steps run in the caller, messages to the
queue, emails) would never happen. `as_committed` runs an action and then its deferred work,
once, as a commit would; the test client's requests run that way (conftest installs
CommittingClient on every TestCase).
"""

import logging

from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

log = logging.getLogger(__name__)


def as_committed(action, *args, using: str = DEFAULT_DB_ALIAS, **kwargs):
    """Call `action`, then run the on_commit callbacks it registered (and theirs), once each."""
    hooks = connections[using].run_on_commit
    start = len(hooks)
    try:
        return action(*args, **kwargs)
    finally:
        while len(hooks) > start:
            # Taken off the list as they run, so an enclosing capture cannot run them again.
            pending = hooks[start:]
            del hooks[start:]
            for _, callback, robust in pending:
                if robust:
                    try:
                        callback()
                    except Exception:  # noqa: BLE001 - as Django does: robust hooks are logged
                        log.exception("robust on_commit callback %r failed", callback)
                else:
                    callback()


class CommittingClient(Client):
    """The test client whose requests commit, as far as on_commit work goes."""

    def request(self, **request):
        return as_committed(super().request, **request)
