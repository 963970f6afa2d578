"""Unwedging a qcluster whose worker was killed while it held the local queue's read lock.

django-q2's workers share one multiprocessing queue; an idle worker waits for the next
message *holding the queue's read lock* (a semaphore). SIGKILL that worker (an OOM kill, an
operator's `kill -9`) and the lock is never released: every other worker, and the one
django-q2 starts in its place, waits for it forever (django-q #394). The cluster looks alive
(its timer threads tick, /healthz is ok) but runs nothing: the runs its pusher took stay
`queued` until the timers send them again, and with every cluster wedged they never run.

Each worker's timer thread therefore checks, on every pass, whether the read lock is held
while no live worker of its cluster is blocked reading the queue's pipe (Linux:
/proc/PID/syscall and wchan; where they cannot be read it never acts).
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
    """The read lock is held, yet no process of the cluster waits reading the queue's pipe."""
    if _queue._rlock.acquire(False):
        _queue._rlock.release()
        return False
    return not _reading(os.getppid(), _queue._reader.fileno())


def _reading(parent: int, fd: int) -> bool:
    """Whether a child of `parent` is blocked reading file descriptor `fd` (the queue's pipe,
    the same number in every worker: they inherit it). Unknowable here: assume it is."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) != parent:
                continue
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        try:
            call = (entry / "syscall").read_text().split()
        except OSError:
            return True  # no permission to look (or gone): never act on a guess
        if not call or call[0] in ("running", "-1"):
            continue  # on a CPU now, or not in a system call: not blocked reading
        try:
            if int(call[1], 16) == fd and "pipe" in (entry / "wchan").read_text():
                return True
        except (OSError, IndexError, ValueError):
            return True
    return False
