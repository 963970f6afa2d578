"""Count each HTTP call to a service for /metrics: by service, outcome and latency bucket.

One UPDATE (an INSERT the first time) from whichever process made the call, outside the
step's transaction: a metric must never hold up or roll back a step, so a failure to count
is logged and forgotten (docs/metrics.md).
"""

import logging

from django.db import DatabaseError, IntegrityError, transaction

from ..models import CALL_BUCKETS, INF_BOUND, ServiceCallCount
from . import statements

log = logging.getLogger(__name__)


def count_call(*, service: str, outcome: str, seconds: float) -> None:
    """Add one call of `seconds` that ended with `outcome` to `service`'s counters."""
    le = next((bound for bound in CALL_BUCKETS if seconds <= bound), INF_BOUND)
    key = {"service": service, "outcome": outcome, "le": le}
    try:
        if _add(key, seconds):
            return
        try:
            with transaction.atomic():
                ServiceCallCount.objects.create(**key, count=1, seconds=seconds)
        except IntegrityError:  # another process made the row first
            _add(key, seconds)
    except DatabaseError:
        log.warning("could not count a call to %s", service, exc_info=True)


def _add(key: dict, seconds: float) -> bool:
    changes = {"count": statements.Add(1), "seconds": statements.Add(seconds)}
    return bool(statements.update(ServiceCallCount, key, changes))
