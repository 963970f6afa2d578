"""Unwedging a qcluster whose worker was killed while it held the local queue's read lock.

django-q2's workers share one multiprocessing queue; an idle worker waits for the next
message *holding the queue's read lock* (a semaphore). SIGKILL that worker (an OOM kill, an
operator's `kill -9`) and the lock is never released: every other worker, and the one
django-q2 starts in its place, waits for it forever (django-q #394). The cluster looks alive
(its timer threads tick, /healthz is ok) but runs nothing: the runs its pusher took stay
`queued` until the timers send them again, and with every cluster wedged they never run.

Each worker's timer thread therefore checks, on every pass, whether the read lock is held
while no live worker of its cluster is reading the queue's pipe (Linux: /proc/PID/wchan).
When that lasts HMS_WEDGE_SECONDS, one of them releases the lock in the dead worker's place
and logs it. docs/queue.md tells the story.
"""

import logging
import multiprocessing
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)
_queue = None  # this worker's task queue (django-q2's), set when the worker starts
_held_since: float | None = None


def watch_task_queue() -> None:
    """In a starting qcluster worker: remember the queue its worker loop reads."""
    global _queue
    args = getattr(multiprocessing.current_process(), "_args", ())
    if args and hasattr(args[0], "_rlock"):  # django_q.worker.worker(task_queue, ...)
        _queue = args[0]


def check(*, now: float | None = None) -> bool:
    """One look at the queue's read lock; True when it released a dead worker's lock."""
    global _held_since
    if _queue is None:
        return False
    now = time.monotonic() if now is None else now
    if not _wedged():
        _held_since = None
        return False
    if _held_since is None:
        _held_since = now
        return False
    if now - _held_since < settings.HMS_WEDGE_SECONDS:
        return False
    _held_since = None
    # One worker of the cluster acts, and checks again just before it does.
    if not cache.add(f"hms:unwedge:{os.getppid()}", os.getpid(), timeout=5) or not _wedged():
        return False
    try:
        _queue._rlock.release()
    except ValueError:  # released meanwhile: nothing to do
        return False
    log.critical("released the task queue's read lock a killed worker held (django-q #394)")
    return True


def _wedged() -> bool:
    """The read lock is held, yet no process of the cluster but its monitor reads a pipe."""
    if _queue._rlock.acquire(False):
        _queue._rlock.release()
        return False
    return _pipe_readers(os.getppid()) <= 1  # the monitor reads the result queue's pipe


def _pipe_readers(parent: int) -> int:
    """How many children of `parent` wait in a pipe read (wchan unreadable: assume all)."""
    readers = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(stat[1]) != parent:
                continue
            wchan = (entry / "wchan").read_text()
        except OSError:
            continue
        if wchan in ("", "0"):
            return 99  # no way to tell here: never act
        readers += "pipe" in wchan
    return readers
