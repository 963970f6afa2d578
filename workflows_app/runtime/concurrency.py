"""How many calls to one HTTP service may be in flight at once in one qcluster.

Without a limit, a service that hangs takes every worker it is given: four hanging steps on
two workers held up every other step for as long as they hung. So each HTTP call first takes
one of its service's slots (`concurrency`, default HMS_SERVICE_CONCURRENCY: the workers of a
cluster minus one). A run that finds none free waits for one a moment (HMS_SLOT_GRACE_SECONDS,
0.25 s): a fast service's call ends within milliseconds, so its runs take turns at the slot
instead of being sent back (which cost a second each, and halved one service's throughput on
two workers, docs/BENCHMARKS.md). Only when the grace passes, as for a slow or hanging
service, does the run go back to the queue unrun, its attempt not counted, to be dispatched
again about HMS_SLOT_WAIT_SECONDS later (runtime/steps.py, defer_run). A cluster is the
processes of one `manage.py qcluster` (its workers share a parent, on one machine), so each
cluster keeps a worker for other services whatever one service does.

A slot is an exclusive `flock` on a small file (HMS_SLOT_DIR, per cluster, service and slot
number): taking one is a system call, not a cache round trip; it is exact (two workers never
hold the same slot); and the kernel frees it when the holder's process ends, however it ends.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from ..models import ServiceKind

GRACE_POLL_SECONDS = 0.002


def limit_of(service) -> int:
    """The service's own `concurrency`, or the site's default."""
    return service.concurrency or settings.HMS_SERVICE_CONCURRENCY


@contextmanager
def slot(service, *, holder: str) -> Iterator[bool]:
    """Hold one of `service`'s slots in this cluster while the block runs; yields False (and
    holds nothing) when all stay taken through the grace. Only HTTP services are limited.
    `holder` names the call (kept for callers and logs; a lock file needs no name)."""
    if service.kind != ServiceKind.HTTP:
        yield True
        return
    paths = _paths(service)
    grace = time.monotonic() + settings.HMS_SLOT_GRACE_SECONDS
    while (taken := _take(paths, holder)) is None and time.monotonic() < grace:
        time.sleep(GRACE_POLL_SECONDS)
    try:
        yield taken is not None
    finally:
        if taken is not None:
            fcntl.flock(taken, fcntl.LOCK_UN)
            os.close(taken)


def _take(paths: list[Path], holder: str) -> int | None:  # noqa: ARG001 - see slot
    """An open, exclusively locked slot file; None when every slot is held."""
    for path in paths:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def _paths(service) -> list[Path]:
    folder = Path(settings.HMS_SLOT_DIR) / str(os.getppid())  # a cluster's workers share a parent
    folder.mkdir(parents=True, exist_ok=True)
    return [folder / f"{service.name}.{i}" for i in range(limit_of(service))]
