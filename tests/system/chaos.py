"""Chaos run: many instances through a flaky HTTP service and a human step, on PostgreSQL +
Redis with two qcluster processes, one of them SIGKILLed at random moments and restarted.

    make chaos                         # full size (several hundred instances)
    CHAOS_SIZE=small make chaos        # the CI size (tests/system/test_chaos_small.py), ~45 s

Environment: CHAOS_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/hms_chaos; it is
dropped and created again, so its name must contain "chaos"), CHAOS_REDIS_URL (default
redis://127.0.0.1:6379/10; flushed), CHAOS_SEED (reuses a run's seed; timing still varies),
CHAOS_INSTANCES (overrides the size's count). Exit 0: every invariant held (tests/system/chaos_checks.py
says which and why); 1: some broke (listed); 2: PostgreSQL or Redis unreachable.
Logs: var/chaos/ (qcluster-a.log, qcluster-b.log, flaky.jsonl).
"""

import os
import random
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.system import harness, stores  # noqa: E402
from tests.system.chaos_checks import Facts, summarise, verify  # noqa: E402
from tests.system.flaky_service import Behaviour, FlakyService, read_log  # noqa: E402


@dataclass(frozen=True, slots=True)
class Size:
    instances: int
    start_seconds: float  # instances are started evenly over this window
    kill_seconds: float  # kills happen only in this window (then the run drains)
    kill_gap: tuple[float, float]  # seconds between kills, drawn uniformly
    down_for: tuple[float, float]  # how long the killed cluster stays down
    deadline: float  # the whole run's limit, setup excluded


SIZES = {
    "small": Size(40, 8, 20, (2, 4), (0.5, 2), 70),
    "full": Size(400, 90, 110, (3, 9), (0.5, 3), 420),
}
WORKERS = 3
# A request fails 30% of the time: 15% 5xx, 10% slower than the 1 s time-out, 5% dropped.
BEHAVIOUR = Behaviour(error_share=0.15, slow_share=0.10, drop_share=0.05, slow_seconds=2.0)
REJECT_SHARE = 0.1
# Short lease and redelivery so that recovery after a kill is quick, keeping the order the
# settings require: request time-out (1 s) < task time-out < step lease.
CLUSTER_ENV = {
    "HMS_WORKERS": str(WORKERS),
    "HMS_TASK_TIMEOUT": "6",
    "HMS_STEP_LEASE_SECONDS": "8",
    "HMS_REDELIVERY_SECONDS": "4",
    "HMS_TIMER_INTERVAL": "0.3",
    "HMS_NOTIFY_TASKS": "false",
    # The flaky service listens on 127.0.0.1 (service URLs must otherwise be public).
    "HMS_PRIVATE_URL_ALLOW": "127.0.0.0/8,::1",
}
SERVICES = """services:
  flakySvc:       {{ kind: http, url: "{url}", timeout: "1s" }}
  chaosReviewSvc: {{ kind: human, group: chaos-reviewers }}
  chaosOkSvc:     {{ kind: python, callable: "workflows_app.builtin.accept" }}
"""
# A person's review and a flaky service's score run in parallel branches (docs/parallel.md):
# kills, retries and redeliveries inside a branch, decisions racing workers to the join, and a
# refusal in one branch cancelling the other.
WORKFLOW = """id: chaos
steps:
  - { id: fetch, service: flakySvc, retry: { max: 3, backoff: 1s } }
  - id: checks
    parallel:
      - { id: by-person, steps: [{ id: review, service: chaosReviewSvc, on: { rejected: reject } }] }
      - { id: by-service, steps: [{ id: score, service: flakySvc, retry: { max: 3, backoff: 1s } }] }
  - { id: notify, service: chaosOkSvc }
"""
WORKDIR = harness.ROOT / "var" / "chaos"


def main() -> int:
    size = SIZES[os.environ.get("CHAOS_SIZE", "full")]
    if count := os.environ.get("CHAOS_INSTANCES"):
        size = replace(size, instances=int(count))
    db_url = os.environ.get("CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hms_chaos")
    redis_url = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/10")
    seed = int(os.environ.get("CHAOS_SEED") or time.time())
    if why := stores.unreachable(db_url, redis_url):
        print(f"chaos: SKIPPED, {why}")
        return 2
    if "chaos" not in db_url.rpartition("/")[2]:
        print(f"chaos: refusing to drop {db_url}: the database name must contain 'chaos'")
        return 2
    print(f"chaos: {size.instances} instances, seed {seed}, {db_url}, {redis_url}")
    env = _prepare(db_url, redis_url)
    flaky = FlakyService(log_path=WORKDIR / "flaky.jsonl", behaviour=BEHAVIOUR, seed=seed)
    flaky.start()
    definition = _load_workflow(flaky.url)
    chaos = Chaos(size, env, random.Random(seed), definition, flaky)
    try:
        duration, health = chaos.run()
    finally:
        chaos.shutdown()
        flaky.stop()
    return _report(definition, chaos, duration, health)


def _prepare(db_url: str, redis_url: str) -> dict[str, str]:
    """A fresh database and queue; Django set up in this process on the same settings."""
    stores.recreate_postgres_database(db_url)
    stores.flush_redis(redis_url)
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in WORKDIR.glob("qcluster-*.log"):
        old.unlink()
    os.environ.update(CLUSTER_ENV, DATABASE_URL=db_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "hms_site.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return harness.django_env(
        database_url=db_url, redis_url=redis_url, LOG_LEVEL="INFO", **CLUSTER_ENV
    )


def _load_workflow(url: str) -> Any:
    """Register the services (the flaky one at `url`) and publish the chaos workflow."""
    from workflows_app.authoring import publishing

    (WORKDIR / "services.yaml").write_text(SERVICES.format(url=url))
    (WORKDIR / "chaos.yaml").write_text(WORKFLOW)
    report = publishing.load_files([WORKDIR / "services.yaml", WORKDIR / "chaos.yaml"])
    return report.published[0]


class Chaos:
    """Two clusters, a starter, a driver for the human step, and the killer (the main loop)."""

    def __init__(
        self,
        size: Size,
        env: dict[str, str],
        rng: random.Random,
        definition: Any,
        flaky: FlakyService,
    ) -> None:
        self.size, self.env, self.rng, self.definition = size, env, rng, definition
        self.flaky = flaky
        self.clusters: list = [None, None]
        self.offsets = [0, 0]  # where each cluster's current process starts in its log
        self.kills = 0
        self.started: list[int] = []
        self.stopping = threading.Event()
        self.t0 = time.monotonic()

    def log(self, text: str) -> None:
        print(f"  t={time.monotonic() - self.t0:5.1f}s {text}", flush=True)

    def run(self) -> tuple[float, dict]:
        """Start everything, kill and restart until the kill window ends, wait for the drain."""
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self._start_cluster, (0, 1)))
        self.t0 = time.monotonic()
        threads = [
            threading.Thread(target=self._starter, daemon=True),
            threading.Thread(target=self._driver, daemon=True),
        ]
        for thread in threads:
            thread.start()
        self._killer()
        self._drain(threads[0])
        duration = time.monotonic() - self.t0
        from workflows_app.web.health import collect

        health = collect()
        self.stopping.set()
        for thread in threads:
            thread.join(timeout=10)
        return duration, health

    def _start_cluster(self, index: int) -> None:
        log = WORKDIR / f"qcluster-{'ab'[index]}.log"
        self.offsets[index] = log.stat().st_size if log.exists() else 0
        self.clusters[index] = harness.start_qcluster(env=self.env, log_path=log)

    def _tasks_in_progress(self, index: int) -> int:
        """Tasks the cluster's log shows started and not finished (since its last start)."""
        log = WORKDIR / f"qcluster-{'ab'[index]}.log"
        text = log.read_bytes()[self.offsets[index] :].decode(errors="replace")
        # Each worker's latest task, unless the monitor logged it done (it may lag behind).
        latest = dict(re.findall(r"(Process-\w+) processing (\S+) '", text))
        done = set(re.findall(r"(?:Processed|Failed) '[^']+' \((\S+)\)", text))
        return len(set(latest.values()) - done)

    def _starter(self) -> None:
        """Start the instances evenly over the start window, as applications come in."""
        from workflows_app import runtime

        gap = self.size.start_seconds / self.size.instances
        for n in range(self.size.instances):
            if self.stopping.is_set():
                return
            instance, _ = runtime.start_instance(definition=self.definition, payload={"n": n})
            self.started.append(instance.pk)
            time.sleep(gap)

    def _driver(self) -> None:
        """Decide every waiting review, as staff would: mostly approved, some rejected."""
        from django.db import connection

        from workflows_app import runtime
        from workflows_app.models import RunState, StepRun

        rng = random.Random(self.rng.random())
        while not self.stopping.is_set():
            waiting = StepRun.objects.filter(step_id="review", state=RunState.WAITING)
            for run_id in list(waiting.values_list("pk", flat=True)[:50]):
                result = "rejected" if rng.random() < REJECT_SHARE else "approved"
                reason = "chaos: refused" if result == "rejected" else ""  # a refusal says why
                try:
                    runtime.complete_task(
                        run_id=run_id, result=result, reason=reason, actor="chaos-driver"
                    )
                except Exception as exc:  # noqa: BLE001 - reported; the run then fails its checks
                    self.log(f"driver: completing {run_id} failed: {exc!r}")
            time.sleep(0.3)
        connection.close()

    def _killer(self) -> None:
        """SIGKILL one cluster at random moments; restart it after a short while."""
        next_kill = self.rng.uniform(*self.size.kill_gap) / 2
        while time.monotonic() - self.t0 < self.size.kill_seconds:
            time.sleep(max(0.0, next_kill - (time.monotonic() - self.t0)))
            self._wait_for_a_request_in_flight(timeout=4)
            if time.monotonic() - self.t0 >= self.size.kill_seconds:
                return
            # The cluster inside a call, if only one is: a kill there is what loses a lease.
            busy = [self._tasks_in_progress(index) for index in (0, 1)]
            victim = busy.index(max(busy)) if busy[0] != busy[1] else self.rng.randrange(2)
            harness.kill(self.clusters[victim])
            self.kills += 1
            down = self.rng.uniform(*self.size.down_for)
            self.log(
                f"SIGKILL qcluster-{'ab'[victim]} (kill {self.kills}) with {busy[victim]} task(s) "
                f"in progress; down for {down:.1f}s"
            )
            time.sleep(down)
            self._start_cluster(victim)
            next_kill = time.monotonic() - self.t0 + self.rng.uniform(*self.size.kill_gap)

    def _wait_for_a_request_in_flight(self, timeout: float) -> None:
        """Kill while workers are inside calls if that comes soon: that is what loses leases."""
        deadline = time.monotonic() + timeout
        # Within the 1 s request time-out the caller still waits.
        while not self.flaky.callers_waiting(within=0.8) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _drain(self, starter: threading.Thread) -> None:
        """Wait until every instance has ended, or the deadline."""
        from workflows_app.models import Status, WorkflowInstance

        last_note = 0.0
        while time.monotonic() - self.t0 < self.size.deadline:
            running = WorkflowInstance.objects.filter(status=Status.RUNNING).count()
            if not starter.is_alive() and running == 0:
                self.log(f"all {len(self.started)} instances ended")
                return
            if time.monotonic() - last_note > 5:
                self.log(f"started {len(self.started)}/{self.size.instances}, running {running}")
                last_note = time.monotonic()
            time.sleep(0.5)
        self.log(f"deadline of {self.size.deadline:g}s reached")

    def shutdown(self) -> None:
        """Stop the threads and both clusters (SIGTERM, then SIGKILL after 15 s)."""
        self.stopping.set()
        for proc in self.clusters:
            if proc is not None:
                harness.stop(proc, grace=15)


def _facts(definition: Any, chaos: Chaos) -> Facts:
    """Everything the checks need, read once from the database and the logs."""
    from workflows_app.models import Event, StepRun, WorkflowInstance
    from workflows_app.queries import catalog

    spec = catalog.spec_of(definition)
    rows = WorkflowInstance.objects.filter(definition=definition)
    instances = {
        i["id"]: {**i, "uuid": str(i["uuid"])}
        for i in rows.values("id", "uuid", "status", "current_step", "error")
    }
    fields = (
        "instance_id",
        "step_id",
        "lane",
        "state",
        "attempts",
        "result",
        "output",
        "created_at",
    )
    runs = {
        str(r.pop("id")): r for r in StepRun.objects.filter(instance__in=rows).values("id", *fields)
    }
    events = Event.objects.filter(instance__in=rows)
    redelivered = Counter(
        str(r) for r in events.filter(type="redelivered").values_list("run_id", flat=True)
    )
    return Facts(
        steps=list(spec.step_ids),
        http_steps={s.id: s.retry.max for s in spec.all_steps if s.service == "flakySvc"},
        lanes=_lanes(spec),
        started=list(chaos.started),
        instances=instances,
        runs=runs,
        redelivered=redelivered,
        event_totals=Counter(events.values_list("type", flat=True)),
        task_timeouts=sum(
            log.read_text(errors="replace").count("after timeout")
            for log in WORKDIR.glob("qcluster-*.log")
        ),
        log=read_log(WORKDIR / "flaky.jsonl"),
        kills=chaos.kills,
        workers_per_cluster=WORKERS,
    )


def _lanes(spec: Any) -> dict[str, list[str]]:
    """Each lane's steps in order: the workflow's own, then each branch's."""
    lanes = {"": list(spec.step_ids)}
    for branch_id in spec.branch_ids:
        lanes[branch_id] = [step.id for step in spec.branch(branch_id).steps]
    return lanes


def _report(definition: Any, chaos: Chaos, duration: float, health: dict) -> int:
    """Print the summary table and any broken invariant; the exit status."""
    facts = _facts(definition, chaos)
    problems = verify(facts)
    if len(chaos.started) < chaos.size.instances:
        problems.append(f"only {len(chaos.started)} of {chaos.size.instances} instances started")
    figures = {**summarise(facts), "duration": f"{duration:.0f}s"}
    print()
    print(stores.format_table(list(figures), [list(figures.values())]))
    print(f"\n/healthz at the end of the run: {health['status']} {health['reasons'] or ''}")
    if problems:
        print(f"\nchaos: FAILED, {len(problems)} broken invariants:")
        for line in problems[:40]:
            print(f"  - {line}")
        return 1
    print(
        "\nchaos: OK, every instance ended; each step ran at most once, in order, no gap; "
        "no orphaned task; requests per run <= retry.max + 1 + its redeliveries"
    )
    return 0


if __name__ == "__main__":
    harness.stop_servers_on_sigterm()
    sys.exit(main())
