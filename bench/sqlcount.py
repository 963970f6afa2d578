"""Counting the statements every benchmark process sends, by kind, through one shared log.

Each process appends `kind verb` lines with O_APPEND (atomic for short writes), so the
driver, the qcluster pusher, workers and monitor all land in one file in time order; a
measurement reads the lines between two offsets. Kinds: `broker` (django-q2's tables),
`schedule` (its scheduler), `timer` (our timer thread's polling) and `engine` (the rest).
"""

import os
import threading
from collections import Counter
from pathlib import Path

DATA_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
_fds: dict[str, int] = {}


def install(sender=None, connection=None, **_kwargs) -> None:
    """connection_created receiver: wrap this connection's statements with the counter."""
    if connection is not None and _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _count(execute, sql, params, many, context):
    path = os.environ["HMS_BENCH_SQL_LOG"]
    if path not in _fds:
        _fds[path] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(_fds[path], f"{classify(sql)} {_verb(sql)}\n".encode())
    return execute(sql, params, many, context)


def classify(sql: str) -> str:
    """Which part of the system a statement belongs to."""
    if "django_q_schedule" in sql:
        return "schedule"
    if "django_q_" in sql:
        return "broker"
    if threading.current_thread().name == "hms-timer":
        return "timer"
    return "engine"


def _verb(sql: str) -> str:
    word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    return word if word in DATA_VERBS else "OTHER"


def offset(path: Path) -> int:
    """The log's current size: a measurement reads from here."""
    return path.stat().st_size if path.exists() else 0


def read(path: Path, start: int, end: int | None = None) -> Counter:
    """Data statements by kind between two offsets (other statements under `<kind>:other`)."""
    text = path.read_bytes()[start:end].decode()
    counts: Counter = Counter()
    for line in text.splitlines():
        kind, _, verb = line.partition(" ")
        counts[kind if verb != "OTHER" else f"{kind}:other"] += 1
    return counts


def counting():
    """A context that counts this thread's statements on the default connection."""
    from django.db import connection

    return connection.execute_wrapper(_count)
