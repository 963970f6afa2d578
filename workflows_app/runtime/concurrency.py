"""How many calls to one HTTP service may be in flight at once in one qcluster.

Without a limit, a service that hangs takes every worker it is given: four hanging steps on
two workers held up every other step for as long as they hung. So each HTTP call first takes
one of its service's slots (`concurrency`, default HMS_SERVICE_CONCURRENCY: the workers of a
cluster minus one); a run that finds none free goes back to the queue unrun, its attempt not
counted, and is dispatched again about HMS_SLOT_WAIT_SECONDS later (runtime/steps.py,
defer_run). A cluster is the processes of one `manage.py qcluster` (its workers share a
parent), so each cluster keeps a worker for other services whatever one service does.

Slots are keys in the shared cache (`add` takes one atomically on Redis) that expire with
the step lease, so a slot of a killed worker frees itself when its run is redelivered.
"""

import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from ..models import ServiceKind

KEY_PREFIX = "hms:slot:"


def limit_of(service) -> int:
    """The service's own `concurrency`, or the site's default."""
    return service.concurrency or settings.HMS_SERVICE_CONCURRENCY


@contextmanager
def slot(service, *, holder: str) -> Iterator[bool]:
    """Hold one of `service`'s slots in this cluster while the block runs; yields False (and
    holds nothing) when all are taken. Only HTTP services are limited."""
    if service.kind != ServiceKind.HTTP:
        yield True
        return
    lease = math.ceil(settings.HMS_STEP_LEASE_SECONDS)
    taken = next(
        (key for key in _keys(service) if cache.add(key, holder, timeout=lease)),
        None,
    )
    try:
        yield taken is not None
    finally:
        if taken and cache.get(taken) == holder:
            cache.delete(taken)


def _keys(service) -> list[str]:
    cluster = f"{socket.gethostname()}:{os.getppid()}"  # a cluster's workers share a parent
    return [f"{KEY_PREFIX}{cluster}:{service.name}:{i}" for i in range(limit_of(service))]
