"""Rendered answers kept per process, keyed by what they depend on (docs/api.md, "ETag").

A portal that polls an instance's status without `If-None-Match`, or many readers of one
instance, would otherwise rebuild the same document from the same rows each time. The key is
the instance's public id and the answer's ETag, which names the revision (bumped by every
change), the language, the reader (private or anonymous) and, where the answer moves with the
clock, the minute (web/conditional.py). A new revision is a new key, so a stored body is never
stale; it is simply never asked for again and ages out of the bounded store.

Each process keeps its own store (gunicorn workers, runserver's threads share one): nothing
is shared, nothing is invalidated, and a restart starts empty.
"""

import threading
from collections import OrderedDict
from uuid import UUID

MAX_ENTRIES = 2048  # about as many instances as are polled at once in one process
MAX_BODY_BYTES = 64 * 1024  # a larger document (a long history) is rebuilt each time

_bodies: OrderedDict[tuple[UUID, str], bytes] = OrderedDict()
_lock = threading.Lock()


def body_for(key: UUID, tag: str) -> bytes | None:
    """The body stored for this instance and ETag, if any (it becomes the newest)."""
    with _lock:
        body = _bodies.get((key, tag))
        if body is not None:
            _bodies.move_to_end((key, tag))
        return body


def keep(key: UUID, tag: str, body: bytes) -> None:
    """Store a body under this instance and ETag; the oldest go when the store is full."""
    if len(body) > MAX_BODY_BYTES:
        return
    with _lock:
        _bodies[(key, tag)] = body
        _bodies.move_to_end((key, tag))
        while len(_bodies) > MAX_ENTRIES:
            _bodies.popitem(last=False)


def clear() -> None:
    """Forget every stored body (tests that reuse public ids and revisions call this)."""
    with _lock:
        _bodies.clear()
