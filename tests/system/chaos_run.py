"""The chaos run itself: two clusters, the web server, a starter, the API driver for human
tasks, the pollers, and the killer (the main loop). docs/chaos.md describes the shape."""

import os
import random
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.system import chaos_webhooks, harness
from tests.system.chaos_setup import REJECT_SHARE, WORKDIR, WORKER_KILL_SHARE, Size
from tests.system.chaos_traffic import ConnectionSampler, Traffic
from tests.system.flaky_service import FlakyService

WORKER_READY = re.compile(r"ready for work at (\d+)")


@dataclass
class Outcome:
    """What the run measured besides the rows and the service's log."""

    duration: float = 0.0
    last_kill: float = 0.0  # seconds after the start
    finished_after_last_kill: float | None = None  # None: not every instance ended
    health: dict = field(default_factory=dict)
    pg_peak: int | None = None
    webhooks_left: int = 0  # status-webhook messages still undelivered at the end


class Chaos:
    def __init__(
        self,
        size: Size,
        env: dict[str, str],
        rng: random.Random,
        workflows: dict[str, Any],
        flaky: FlakyService,
        *,
        web: str,
        db_url: str,
    ) -> None:
        self.size, self.env, self.rng, self.workflows = size, env, rng, workflows
        self.flaky, self.web_kind, self.db_url = flaky, web, db_url
        self.clusters: list = [None, None]
        self.offsets = [0, 0]  # where each cluster's current process starts in its log
        self.kills = self.worker_kills = 0
        self.started: list[int] = []
        self.uuids: list[str] = []
        self.stopping = threading.Event()
        self.web = None
        self.traffic: Traffic | None = None
        self.t0 = time.monotonic()

    def log(self, text: str) -> None:
        print(f"  t={time.monotonic() - self.t0:5.1f}s {text}", flush=True)

    def run(self) -> "Outcome":
        """Start everything, kill and restart until the kill window ends, wait for the end."""
        from workflows_app.models import ApiToken

        outcome = Outcome()
        sampler = ConnectionSampler(self.db_url).start() if "postgres" in self.db_url else None
        port = harness.free_port()
        starter = {"gunicorn": self._gunicorn, "runserver": harness.start_runserver}
        self.web = starter[self.web_kind](
            env=self.env | {"LOG_LEVEL": "WARNING"}, port=port, log_path=WORKDIR / "web.log"
        )
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(self._start_cluster, (0, 1)))
        _, token = ApiToken.issue("chaos-driver")
        base = f"http://127.0.0.1:{port}"
        self.traffic = Traffic(base=base, token=token, started=self.uuids, rng=self.rng)
        self.t0 = time.monotonic()
        starting = threading.Thread(target=self._starter, daemon=True)
        starting.start()
        self.traffic.start(pollers=self.size.pollers, rate=self.size.poll_rate, decide=self._decide)
        outcome.last_kill = self._killer()
        outcome.finished_after_last_kill = self._drain(starting, outcome.last_kill)
        outcome.duration = time.monotonic() - self.t0
        outcome.webhooks_left = chaos_webhooks.drain(within=self.size.finish_within, log=self.log)
        self.traffic.stop()
        outcome.health = _health(base)
        outcome.pg_peak = sampler.stop() if sampler else None
        return outcome

    @staticmethod
    def _gunicorn(**kwargs) -> Any:
        return harness.start_gunicorn(workers=2, threads=4, **kwargs)

    def _start_cluster(self, index: int) -> None:
        log = self._log_path(index)
        self.offsets[index] = log.stat().st_size if log.exists() else 0
        self.clusters[index] = harness.start_qcluster(env=self.env, log_path=log)

    def _log_path(self, index: int) -> Path:
        return WORKDIR / f"qcluster-{'ab'[index]}.log"

    def _starter(self) -> None:
        """Start the instances evenly over the start window, as applications come in."""
        from workflows_app import runtime

        branches = round(self.size.instances * self.size.branch_share)
        keys = ["chaos-http"] * (self.size.instances * 3 // 4)
        keys += ["chaos-human"] * (self.size.instances - len(keys)) + ["chaos-branches"] * branches
        self.rng.shuffle(keys)
        gap = self.size.start_seconds / len(keys)
        for n, key in enumerate(keys):
            if self.stopping.is_set():
                return
            instance, _ = runtime.start_instance(definition=self.workflows[key], payload={"n": n})
            self.started.append(instance.pk)
            self.uuids.append(str(instance.uuid))
            time.sleep(gap)

    def _decide(self) -> None:
        """Staff decide each waiting review through the API after a while (some after it
        escalated): mostly approved, some rejected with a reason."""
        from django.db import connection

        from workflows_app.models import RunState, StepRun

        rng = random.Random(self.rng.random())
        session = requests.Session()
        due: dict[str, float] = {}
        late = self.size.review_timeout * 2  # about half escalate first
        while not self.traffic.stopping.is_set():
            waiting = StepRun.objects.filter(step_id="review", state=RunState.WAITING)
            ids = {str(pk) for pk in waiting.values_list("pk", flat=True)}
            for run_id in ids - due.keys():
                due[run_id] = time.monotonic() + rng.uniform(0, late)
            for run_id in [r for r, at in due.items() if at <= time.monotonic() and r in ids]:
                refused = rng.random() < REJECT_SHARE
                body = {"result": "rejected", "reason": "chaos: refused"} if refused else {}
                body = body or {"result": "approved"}
                if self.traffic.complete(session, run_id, body) in (200, 409):
                    due.pop(run_id)
            for run_id in due.keys() - ids:
                due.pop(run_id)
            self.traffic.stopping.wait(0.3)
        connection.close()

    def _killer(self) -> float:
        """SIGKILL a cluster, or one worker of it, every few seconds; the last kill's time.

        A killed cluster restarts in a thread of its own (it takes seconds to come up), so
        the kills keep their pace; the victim is a cluster that is up.
        """
        last = 0.0
        restarts: list[threading.Thread | None] = [None, None]
        next_kill = self.rng.uniform(*self.size.kill_gap)
        while True:
            time.sleep(max(0.0, next_kill - (time.monotonic() - self.t0)))
            self._wait_for_a_request_in_flight(timeout=1)
            if time.monotonic() - self.t0 >= self.size.kill_seconds:
                break
            up = [i for i in (0, 1) if not (restarts[i] and restarts[i].is_alive())]
            if not up:
                next_kill = time.monotonic() - self.t0 + 0.5
                continue
            victim = self.rng.choice(up)
            if not (self.rng.random() < WORKER_KILL_SHARE and self._kill_worker(victim)):
                harness.kill(self.clusters[victim])
                self.kills += 1
                down = self.rng.uniform(*self.size.down_for)
                self.log(f"SIGKILL qcluster-{'ab'[victim]} (kill {self.kills}); down {down:.1f}s")
                restarts[victim] = threading.Thread(
                    target=self._restart, args=(victim, down), daemon=True
                )
                restarts[victim].start()
            last = time.monotonic() - self.t0
            next_kill = last + self.rng.uniform(*self.size.kill_gap)
        for thread in restarts:
            if thread:
                thread.join(timeout=120)
        return last

    def _restart(self, index: int, down: float) -> None:
        time.sleep(down)
        self._start_cluster(index)

    def _kill_worker(self, index: int) -> bool:
        """SIGKILL one worker process of cluster `index` (django-q2 starts another)."""
        log = self._log_path(index)
        text = log.read_bytes()[self.offsets[index] :].decode(errors="replace")
        alive = [int(p) for p in WORKER_READY.findall(text) if Path(f"/proc/{p}").exists()]
        if not alive:
            return False
        pid = self.rng.choice(alive)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills += 1
        self.worker_kills += 1
        self.log(f"SIGKILL one worker ({pid}) of qcluster-{'ab'[index]} (kill {self.kills})")
        return True

    def _wait_for_a_request_in_flight(self, timeout: float) -> None:
        """Kill while workers are inside calls if that comes soon: that is what loses leases."""
        deadline = time.monotonic() + timeout
        while not self.flaky.callers_waiting(within=0.8) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _drain(self, starter: threading.Thread, last_kill: float) -> float | None:
        """Wait until every instance has ended; how long after the last kill (None: never,
        within twice the allowed time)."""
        from workflows_app.models import Status, WorkflowInstance

        starter.join(timeout=self.size.start_seconds * 2 + 60)
        limit, last_note = last_kill + self.size.finish_within * 2, 0.0
        while time.monotonic() - self.t0 < limit:
            running = WorkflowInstance.objects.filter(status=Status.RUNNING).count()
            if running == 0:
                after = max(0.0, time.monotonic() - self.t0 - last_kill)
                self.log(
                    f"all {len(self.started)} instances ended, {after:.1f}s after the last kill"
                )
                return after
            if time.monotonic() - last_note > 5:
                self.log(f"started {len(self.started)}, running {running}")
                last_note = time.monotonic()
            time.sleep(0.5)
        self.log("not every instance ended")
        return None

    def shutdown(self) -> None:
        """Stop the threads, both clusters and the web server."""
        self.stopping.set()
        if self.traffic:
            self.traffic.stop()
        for proc in [*self.clusters, self.web]:
            if proc is not None:
                harness.stop(proc, grace=15)


def _health(base: str) -> dict:
    try:
        return requests.get(f"{base}/healthz", timeout=30).json()
    except (requests.RequestException, ValueError) as exc:
        return {"status": f"unreadable ({type(exc).__name__})", "reasons": []}
