"""The ticker: a thread inside every qcluster worker process, so due runs are acted on within ~1 s.

django-q2's scheduler passes only every ~30 s, too coarse for retry backoff and deadlines.
Instead each worker process runs one daemon thread that polls the indexed `wake_at` column
(one cheap query per interval) and hands due runs to sweep.process_due, whose guarded,
row-locked writes make several threads on several machines safe together. The scheduled
sweep stays as a backstop. Started from django-q2's `post_spawn` signal (apps.py), so a
worker that is killed and respawned gets a new thread. docs/timers.md explains the design.
"""

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from ..models import OPEN_RUN_STATES, StepRun
from . import watchdog
from .schedules import beat
from .sweep import process_due

log = logging.getLogger(__name__)

# Batches of process_due per pass: a backlog is worked off, but a pass always ends.
MAX_BATCHES = 10
_started = threading.Event()
_stop = threading.Event()


def start_timer_thread(**_signal_kwargs) -> threading.Thread | None:
    """Start this process's timer thread once (django-q2 post_spawn receiver)."""
    if _started.is_set() or not settings.HMS_TIMER_INTERVAL:
        return None
    _started.set()
    watchdog.watch_task_queue()
    thread = threading.Thread(
        target=run_timer,
        kwargs={"interval": settings.HMS_TIMER_INTERVAL, "stop": _stop},
        name="hms-timer",
        daemon=True,
    )
    thread.start()
    return thread


def run_timer(
    *, interval: float, stop: threading.Event, tick: Callable[[], int] | None = None
) -> None:
    """Call `tick` about every `interval` seconds until `stop` is set; survive its failures."""
    tick = tick or timer_pass
    while not stop.is_set():
        try:
            tick()
        except Exception:  # noqa: BLE001 - the thread must outlive a database hiccup
            log.exception("timer pass failed")
        # Jitter spreads the polls of many workers over the interval.
        stop.wait(interval * (0.5 + random.random()))


def timer_pass() -> int:
    """One pass of the thread: record the heartbeat, then act on whatever is due."""
    # As Django does around each request: drop a broken or too old connection (never
    # inside a transaction someone else holds, such as a test's).
    _close_old_connections()
    try:
        beat("timer")
        watchdog.check()  # a worker killed holding the queue's lock wedges the cluster
        return act_on_due()
    finally:
        _close_old_connections()


def _close_old_connections() -> None:
    if not connection.in_atomic_block:
        close_old_connections()


def act_on_due(*, now: datetime | None = None, max_batches: int = MAX_BATCHES) -> int:
    """Hand due runs to process_due until none are left (at most `max_batches` batches)."""
    acted = 0
    for _ in range(max_batches):
        moment = now or timezone.now()
        # The cheap question first: one indexed probe when nothing is due (nearly always).
        if not StepRun.objects.filter(state__in=OPEN_RUN_STATES, wake_at__lte=moment).exists():
            break
        done = process_due(now=moment)
        acted += done
        if not done:
            break  # due, but locked by another process or moved on: next pass
    return acted
