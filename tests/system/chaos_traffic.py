"""The chaos run's traffic through the web server: citizens polling their status, staff
deciding human tasks through the API, and a sampler of PostgreSQL connections.

Every answer is counted by status; a 5xx or a failed connection is an API error the run
reports (docs/chaos.md). Every loop stops on the run's `stopping` event.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.system import stores


@dataclass
class Answers:
    """What the API answered, by endpoint and status (or the exception's name)."""

    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, status: int | str, detail: str = "") -> None:
        with self.lock:
            self.counts[(endpoint, status)] += 1
            if isinstance(status, str) or status >= 500:
                self.errors.append(f"{endpoint}: {status} {detail}"[:300])

    def total(self, endpoint: str = "") -> int:
        return sum(n for (e, _), n in self.counts.items() if not endpoint or e == endpoint)

    def server_errors(self) -> int:
        return sum(n for (_, s), n in self.counts.items() if isinstance(s, int) and s >= 500)

    def failed_connections(self) -> int:
        return sum(n for (_, s), n in self.counts.items() if isinstance(s, str))


class Traffic:
    """Pollers and the API driver, started and stopped together."""

    def __init__(self, *, base: str, token: str, started: list[str], rng: random.Random):
        self.base, self.started, self.rng = base, started, rng
        self.headers = {"Authorization": f"Bearer {token}"}
        self.answers = Answers()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, *, pollers: int, rate: float, decide: "callable") -> None:
        gap = pollers / rate  # each poller's pace: `rate` requests/s in all
        for n in range(pollers):
            seed = self.rng.random()
            self._thread(self._poll, gap, random.Random(seed), name=f"poller-{n}")
        self._thread(decide, name="driver")

    def _thread(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _poll(self, gap: float, rng: random.Random) -> None:
        """One citizen tab after another: the status of a random started instance."""
        session = requests.Session()
        while not self.stopping.is_set():
            began = time.monotonic()
            if self.started:
                uuid = rng.choice(self.started)
                self.get(session, f"/api/workflows/{uuid}/status", "status")
            self.stopping.wait(max(0.0, gap - (time.monotonic() - began)))

    def get(self, session: requests.Session, path: str, endpoint: str):
        try:
            answer = session.get(self.base + path, headers=self.headers, timeout=30)
        except requests.RequestException as exc:
            self.answers.record(endpoint, type(exc).__name__, str(exc))
            return None
        self.answers.record(endpoint, answer.status_code, answer.text[:200])
        return answer

    def complete(self, session: requests.Session, task_id: str, body: dict) -> int | str:
        """POST /api/tasks/{id}/complete; the status (409: decided or moved on already)."""
        try:
            answer = session.post(
                f"{self.base}/api/tasks/{task_id}/complete",
                json=body,
                headers=self.headers,
                timeout=30,
            )
        except requests.RequestException as exc:
            self.answers.record("complete", type(exc).__name__, str(exc))
            return type(exc).__name__
        self.answers.record("complete", answer.status_code, answer.text[:200])
        return answer.status_code


class ConnectionSampler:
    """The peak of the database's connections in pg_stat_activity, sampled every 0.5 s."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pg-sampler")

    def start(self) -> "ConnectionSampler":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peak

    def _run(self) -> None:
        conn = stores.monitor_connection(self.database_url)
        try:
            while not self._stop.is_set():
                self.peak = max(self.peak, stores.connections_to(self.database_url, conn))
                self.samples += 1
                self._stop.wait(0.5)
        finally:
            conn.close()
