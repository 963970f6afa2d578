"""One thread per process that fires call deadlines (runtime/outbound.py).

A `threading.Timer` per outbound call started and joined a thread for every HTTP step; this
keeps one daemon thread per process (started lazily, again after a fork) over a heap of
deadlines. A cancelled entry is dropped when it comes up.
"""

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable


class Entry:
    """A scheduled call of `action` at `at` (time.monotonic), unless cancelled first."""

    __slots__ = ("action", "at", "cancelled")

    def __init__(self, at: float, action: Callable[[], None]) -> None:
        self.at, self.action, self.cancelled = at, action, False

    def cancel(self) -> None:
        self.cancelled = True


_heap: list[tuple[float, int, Entry]] = []
_order = itertools.count()
_wake = threading.Condition()
_owner: int | None = None  # the pid whose thread runs the heap


def schedule(seconds: float, action: Callable[[], None]) -> Entry:
    """Run `action` in the watchdog thread `seconds` from now, unless the entry is cancelled."""
    global _owner
    entry = Entry(time.monotonic() + seconds, action)
    with _wake:
        if _owner != os.getpid():  # none yet, or a forked child: the parent's thread is gone
            _heap.clear()
            _owner = os.getpid()
            threading.Thread(target=_run, name="hms-call-deadlines", daemon=True).start()
        heapq.heappush(_heap, (entry.at, next(_order), entry))
        if _heap[0][2] is entry:
            _wake.notify()
    return entry


def _run() -> None:
    while True:
        with _wake:
            while not _heap or _heap[0][2].cancelled:
                if _heap:
                    heapq.heappop(_heap)
                else:
                    _wake.wait()
            at, _, entry = _heap[0]
            wait = at - time.monotonic()
            if wait > 0:
                _wake.wait(wait)
                continue
            heapq.heappop(_heap)
        if not entry.cancelled:
            entry.action()
