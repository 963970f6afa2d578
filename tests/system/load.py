"""Load run: gunicorn and a qcluster on PostgreSQL + Redis, and 100+ concurrent clients that
start the fully automated `address-change` example and poll its status and tracker pages.

    make load                                   # 120 clients for 60 s
    LOAD_CLIENTS=20 LOAD_SECONDS=10 make load   # a quick look

Environment: LOAD_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/hms_load; dropped
and created again, so its name must contain "load"), LOAD_REDIS_URL (default
redis://127.0.0.1:6379/11; flushed), LOAD_CLIENTS, LOAD_SECONDS, LOAD_WEB_WORKERS,
LOAD_WEB_THREADS. The site runs as in production (DEBUG=false) on 127.0.0.1 over plain HTTP.
Exit 0: no request failed and every started instance exists and completed; 1 otherwise;
2: PostgreSQL or Redis unreachable. Logs: var/load/.
"""

import os
import random
import secrets
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.system import harness, stores  # noqa: E402

WORKDIR = harness.ROOT / "var" / "load"
POLL_GAP = 0.5  # seconds between a client's polls, as a browser tab would
MAX_POLLS = 20  # then the client moves on; the drain still checks that instance
DRAIN_SECONDS = 180


@dataclass
class Tally:
    """What the clients saw: latencies per endpoint, failures, instances started."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float, error: str = "") -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            if error:
                self.errors.append(f"{endpoint}: {error}")


def main() -> int:
    db_url = os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hms_load")
    redis_url = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/11")
    clients = int(os.environ.get("LOAD_CLIENTS", "120"))
    seconds = float(os.environ.get("LOAD_SECONDS", "60"))
    if why := stores.unreachable(db_url, redis_url):
        print(f"load: SKIPPED, {why}")
        return 2
    if "load" not in db_url.rpartition("/")[2]:
        print(f"load: refusing to drop {db_url}: the database name must contain 'load'")
        return 2
    env = _prepare(db_url, redis_url)
    port = harness.free_port()
    web = cluster = None
    try:
        cluster = harness.start_qcluster(env=env, log_path=WORKDIR / "qcluster.log")
        web = harness.start_gunicorn(
            env=env | {"LOG_LEVEL": "WARNING"},
            port=port,
            log_path=WORKDIR / "gunicorn.log",
            workers=int(os.environ.get("LOAD_WEB_WORKERS", "4")),
            threads=int(os.environ.get("LOAD_WEB_THREADS", "4")),
        )
        base = f"http://127.0.0.1:{port}"
        print(f"load: {clients} clients for {seconds:g}s against {base} ({db_url}, {redis_url})")
        tally, elapsed = _drive(base, clients, seconds)
        completed, lost = _drain(tally.started)
        health = requests.get(f"{base}/healthz", timeout=30)
    finally:
        for proc in (web, cluster):
            if proc is not None:
                harness.stop(proc, grace=15)
    return _report(tally, elapsed, (completed, lost), health, clients)


def _prepare(db_url: str, redis_url: str) -> dict[str, str]:
    """A fresh database with the examples loaded; Django set up here on the same settings."""
    stores.recreate_postgres_database(db_url)
    stores.flush_redis(redis_url)
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in WORKDIR.glob("*.log"):
        old.unlink()
    env = harness.django_env(
        database_url=db_url,
        redis_url=redis_url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        HMS_NOTIFY_TASKS="false",
        HMS_WORKERS="2",
        # Every client comes from 127.0.0.1: the per-address limit of anonymous starts
        # (docs/security.md) would refuse all but the first 20 an hour.
        HMS_PUBLIC_STARTS_PER_WINDOW="1000000",
        LOG_LEVEL="INFO",
    )
    harness.manage("migrate", "--noinput", env=env)
    examples = harness.ROOT / "workflows"
    harness.manage(
        "load_workflows",
        str(examples / "services.yaml"),
        str(examples / "address-change.yaml"),
        env=env,
    )
    os.environ.update(env | {"LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    return env


def _drive(base: str, clients: int, seconds: float) -> tuple[Tally, float]:
    """Run the clients until the time is up; each finishes the instance it follows."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(base, n, deadline, tally), daemon=True)
        for n in range(clients)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + MAX_POLLS * (POLL_GAP + 60))
    if alive := sum(thread.is_alive() for thread in threads):
        tally.errors.append(f"{alive} clients still running after their time")
    return tally, time.monotonic() - began


def _client(base: str, n: int, deadline: float, tally: Tally) -> None:
    """One citizen after another: apply, then watch the status and the tracker page."""
    session = requests.Session()
    time.sleep(random.uniform(0, 2))  # clients arrive over two seconds, not in one burst
    while time.monotonic() < deadline:
        instance_id = _start(session, base, n, tally)
        if instance_id is None:
            continue
        for _ in range(MAX_POLLS):
            time.sleep(POLL_GAP)
            status = _get(session, f"{base}/api/workflows/{instance_id}/status", "status", tally)
            _get(session, f"{base}/track/{instance_id}/", "track", tally)
            if status and status.json().get("status") == "completed":
                break


def _start(session: requests.Session, base: str, n: int, tally: Tally) -> str | None:
    body = {
        "workflowId": "address-change",
        "payload": {"applicant": f"Client {n}", "address": f"{n} Load Street"},
    }
    began = time.perf_counter()
    try:
        answer = session.post(
            f"{base}/api/workflows/start",
            json=body,
            timeout=60,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    except requests.RequestException as exc:
        tally.record("start", time.perf_counter() - began, _describe(exc))
        time.sleep(POLL_GAP)
        return None
    ok = answer.status_code == 201
    tally.record("start", time.perf_counter() - began, "" if ok else f"{answer.status_code}")
    if not ok:
        time.sleep(POLL_GAP)
        return None
    instance_id = answer.json()["instanceId"]
    with tally.lock:
        tally.started.append(instance_id)
    return instance_id


def _get(session: requests.Session, url: str, endpoint: str, tally: Tally):
    began = time.perf_counter()
    try:
        answer = session.get(url, timeout=60)
    except requests.RequestException as exc:
        tally.record(endpoint, time.perf_counter() - began, _describe(exc))
        return None
    error = "" if answer.status_code == 200 else str(answer.status_code)
    tally.record(endpoint, time.perf_counter() - began, error)
    return answer if not error else None


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _drain(started: list[str]) -> tuple[int, list[str]]:
    """Wait for every started instance to complete: how many did, and what is wrong."""
    from workflows_app.models import Status, WorkflowInstance

    rows = WorkflowInstance.objects.filter(definition__key="address-change")
    deadline = time.monotonic() + DRAIN_SECONDS
    while rows.filter(status=Status.RUNNING).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    statuses = {str(u): s for u, s in rows.values_list("uuid", "status")}
    problems = [
        f"instance {i} was started but does not exist" for i in started if i not in statuses
    ]
    problems += [
        f"instance {i} is {s}, not completed" for i, s in statuses.items() if s != Status.COMPLETED
    ]
    if len(statuses) != len(set(started)):
        problems.append(f"{len(statuses)} instances in the database, {len(started)} started")
    return sum(s == Status.COMPLETED for s in statuses.values()), problems


def _report(tally: Tally, elapsed: float, drained: tuple[int, list[str]], health, clients) -> int:
    completed, lost = drained
    rows = []
    for endpoint in ("start", "status", "track"):
        values = tally.latencies[endpoint]
        errors = sum(1 for e in tally.errors if e.startswith(endpoint + ":"))
        rows.append(
            [
                endpoint,
                len(values),
                errors,
                *(f"{stores.percentile(values, q) * 1000:.0f}" for q in (50, 90, 99)),
                f"{max(values, default=0) * 1000:.0f}",
            ]
        )
    total = sum(len(v) for v in tally.latencies.values())
    print()
    print(
        stores.format_table(
            ["endpoint", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows
        )
    )
    print(
        f"\n{clients} clients, {elapsed:.0f}s, {total} requests ({total / elapsed:.0f}/s), "
        f"{len(tally.started)} instances started, {completed} completed; "
        f"/healthz {health.status_code}"
    )
    problems = tally.errors + lost
    if problems:
        print(f"\nload: FAILED, {len(problems)} problems:")
        for line in problems[:30]:
            print(f"  - {line}")
        return 1
    print("\nload: OK, zero errors, zero lost instances: every started instance completed")
    return 0


if __name__ == "__main__":
    harness.stop_servers_on_sigterm()
    sys.exit(main())
