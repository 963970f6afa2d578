"""A timer thread inside every qcluster worker process: due runs are acted on within ~1 s.

django-q2's scheduler passes only every ~30 s, too coarse for retry backoff and deadlines.
Instead each worker process runs one daemon thread that polls the indexed `wake_at` column
(one cheap query per interval) and hands due runs to services.process_due, whose guarded,
row-locked writes make several threads on several machines safe together. The scheduled
sweep stays as a backstop. Started from django-q2's `post_spawn` signal (apps.py), so a
worker that is killed and respawned gets a new thread.
"""

import logging
import random
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)
_started = threading.Event()


def start_timer_thread(**_signal_kwargs) -> None:
    """Start this process's timer thread once (django-q2 post_spawn receiver)."""
    if _started.is_set() or not settings.HMS_TIMER_INTERVAL:
        return
    _started.set()
    threading.Thread(target=_loop, name="hms-timer", daemon=True).start()


def _loop() -> None:
    from .models import OPEN_RUN_STATES, StepRun
    from .services import beat, process_due

    interval = settings.HMS_TIMER_INTERVAL
    while True:
        try:
            beat("timer")
            now = timezone.now()
            due = StepRun.objects.filter(state__in=OPEN_RUN_STATES, wake_at__lte=now)
            while due.exists() and process_due(now=now):
                now = timezone.now()
        except Exception:  # noqa: BLE001 - the thread must outlive a database hiccup
            log.exception("timer pass failed")
            close_old_connections()
        # Jitter spreads the polls of many workers over the interval.
        threading.Event().wait(interval * (0.5 + random.random()))
