"""GET /healthz: can this deployment move applications on? For monitors and load balancers.

Three checks, each answering {"ok": bool, ...} and, when not ok, a "reason" an operator can
act on: the database (a read, and a write rolled back: a database that can be read but not
written, such as a locked SQLite file or a read-only server, is failing), the broker (Redis PING, or the ORM queue's count) and the
workers (the last tick of the timer thread every qcluster worker runs, and of the scheduled
sweep). Any failed check makes the answer 503, so a monitor restarts what is stuck.
`?only=database,broker` runs only those (a load balancer's probe of a web machine need not
fail when the workers elsewhere are down). The answer is always JSON, never cached, and
names no host, user or secret. Only monitors (web/monitors.py: a `metrics` token or an
address in HMS_METRICS_ALLOW) read the checks; anyone else gets {"status": "ok"} or
{"status": "unhealthy"}, with the same status code.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any
from uuid import uuid4

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from ..models import Heartbeat
from .monitors import is_monitor

log = logging.getLogger(__name__)

Check = dict[str, Any]
# How long the database check waits for a write lock before calling the database failing.
WRITE_CHECK_WAIT_MS = 1000


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "HEAD"):
        response = _error(405, "method_not_allowed", "use GET or HEAD")
        response["Allow"] = "GET, HEAD"
        return response
    only = [name for name in request.GET.get("only", "").split(",") if name]
    if unknown := sorted(set(only) - set(CHECKS)):
        return _error(400, "invalid_request", f"unknown checks {unknown}; use {list(CHECKS)}")
    report = collect(only=only or None)
    status = 200 if report["status"] == "ok" else 503
    if not is_monitor(request):
        report = {"status": report["status"]}  # no vendor, queue depth or reasons
    return JsonResponse(report, status=status)


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def collect(now: datetime | None = None, only: list[str] | None = None) -> dict[str, Any]:
    """Run the checks (all, or those named); the report says "ok" only when they all are."""
    now = now or timezone.now()
    checks = {
        name: _guard(name, lambda c=check: c(now))
        for name, check in CHECKS.items()
        if only is None or name in only
    }
    reasons = [f"{name}: {c['reason']}" for name, c in checks.items() if not c["ok"]]
    return {
        "status": "unhealthy" if reasons else "ok",
        "time": now.isoformat(),
        "reasons": reasons,
        "checks": checks,
    }


def _guard(name: str, check) -> Check:
    """A check that raises is a failed check; the details go to the log, not to the client."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is "unhealthy"
        log.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "reason": f"{name} unreachable ({type(exc).__name__})"}


def check_database(now: datetime) -> Check:
    """A read, then a write that is rolled back: a database that refuses writes is failing."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    try:
        _write_and_roll_back(now)
    except DatabaseError as exc:
        log.warning("health check: the database refuses writes", exc_info=True)
        reason = f"the database answers reads but refuses writes ({type(exc).__name__})"
        return {"ok": False, "vendor": connection.vendor, "reason": reason}
    return {"ok": True, "vendor": connection.vendor}


def _write_and_roll_back(now: datetime) -> None:
    """Insert a heartbeat row nobody reads and roll it back, waiting at most a moment for
    locks (a locked SQLite file, a locked table) instead of the site's 20 s busy timeout."""
    wait_ms = WRITE_CHECK_WAIT_MS
    with _sqlite_busy_timeout(wait_ms), transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {wait_ms}")
                cursor.execute(f"SET LOCAL statement_timeout = {wait_ms * 2}")
        Heartbeat.objects.create(name=f"healthz-{uuid4().hex[:12]}", last_tick=now)
        transaction.set_rollback(True)


@contextmanager
def _sqlite_busy_timeout(wait_ms: int) -> Iterator[None]:
    """On SQLite, wait at most `wait_ms` for the write lock (BEGIN IMMEDIATE), then restore."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")


def check_broker(now: datetime) -> Check:
    """Redis answers PING (with time-outs), or the ORM broker's queue can be counted."""
    if not settings.REDIS_URL:
        from django_q.models import OrmQ

        return {"ok": True, "kind": "orm", "queued": OrmQ.objects.count()}
    client, key = _redis()
    client.ping()
    return {"ok": True, "kind": "redis", "queued": client.llen(key)}


@cache
def _redis() -> tuple[redis.Redis, str]:
    """This process's Redis client for health checks, and django-q2's queue key."""
    from django_q.brokers import get_broker

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return client, get_broker().list_key


def check_workers(now: datetime) -> Check:
    """The timer thread of some worker ticked recently, and the scheduled sweep still runs."""
    ticks = dict(Heartbeat.objects.values_list("name", "last_tick"))
    timer, sweep = _age(ticks.get("timer"), now), _age(ticks.get("sweep"), now)
    reason = _workers_problem(timer["age_seconds"], sweep["age_seconds"])
    check: Check = {"ok": not reason, "timer": timer, "sweep": sweep}
    if reason:
        check["reason"] = reason
    return check


def _workers_problem(timer_age: float | None, sweep_age: float | None) -> str:
    limit, sweep_limit = settings.HMS_HEALTH_STALE_SECONDS, settings.HMS_HEALTH_SWEEP_STALE_SECONDS
    if timer_age is None:
        return "no worker has ever ticked: start `manage.py qcluster`"
    if timer_age > limit:
        return (
            f"no worker timer tick for {timer_age:.0f} s (limit {limit} s): "
            "the qcluster workers are stopped or frozen"
        )
    # A sweep that never ran is a fresh deployment; one that stopped is a stuck scheduler.
    if sweep_age is not None and sweep_age > sweep_limit:
        return (
            f"the scheduled sweep last ran {sweep_age:.0f} s ago (limit {sweep_limit} s): "
            "the django-q2 scheduler is not running"
        )
    return ""


CHECKS = {"database": check_database, "broker": check_broker, "workers": check_workers}


def _age(tick: datetime | None, now: datetime) -> dict[str, Any]:
    if tick is None:
        return {"last_tick": None, "age_seconds": None}
    return {"last_tick": tick.isoformat(), "age_seconds": round((now - tick).total_seconds(), 1)}
