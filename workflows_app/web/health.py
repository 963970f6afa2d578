"""GET /healthz: can this deployment move applications on? For monitors and load balancers.

Three checks, each answering {"ok": bool, ...} and, when not ok, a "reason" an operator can
act on: the database (SELECT 1), the broker (Redis PING, or the ORM queue's count) and the
workers (the last tick of the timer thread every qcluster worker runs, and of the scheduled
sweep). Any failed check makes the answer 503, so a monitor restarts what is stuck.
`?only=database,broker` runs only those (a load balancer's probe of a web machine need not
fail when the workers elsewhere are down). The answer is always JSON, never cached, and
names no host, user or secret. Only monitors (web/monitors.py: a `metrics` token or an
address in HMS_METRICS_ALLOW) read the checks; anyone else gets {"status": "ok"} or
{"status": "unhealthy"}, with the same status code.
"""

import logging
from datetime import datetime
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from ..models import Heartbeat
from .monitors import is_monitor

log = logging.getLogger(__name__)

Check = dict[str, Any]


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
    """One round trip to the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


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
