"""Shared helpers for tests that run steps against real HTTP services and real qcluster workers.

Three kinds of helper live here:

1. Real HTTP services on 127.0.0.1 (no mocks of `requests`)::

       with local_http_server() as server:
           service = ScriptedService(server, replies=[Reply(503), OK])
           make_service("svc", "http", url=service.url)
           ...
           assert [r.attempt for r in service.received] == [1, 2]

   `LocalServerMixin` gives each test of a TestCase class its own `self.server`;
   `refused_url()` is an address where nothing listens (connection refused).

2. `StandInQueue`, for TestCase tests: it replaces django-q2, keeps the messages our code sends
   after commit and runs them when the test says so, as one worker would. Time is driven by
   calling `queue.tick(now)` (runtime.process_due) with explicit moments::

       queue = StandInQueue(self)
       instance = queue.start(definition, payload)
       queue.work()                       # the first attempt
       queue.tick(run.wake_at)            # the timer finds the retry due and re-enqueues it
       queue.work()                       # the second attempt

3. A real cluster (mark such tests `@pytest.mark.integration`, and do NOT mark them
   `django_db`: pytest-django's SQLite test database lives in memory, which no subprocess can
   open). `file_database()` gives the test a migrated SQLite file, switches this process's
   `default` connection to it, and yields the environment (DATABASE_URL=sqlite:///...) that
   subprocesses need; `running_cluster(env)` runs `manage.py qcluster` on it::

       def test_something(tmp_path, django_db_blocker):
           with local_http_server() as server, file_database(tmp_path, django_db_blocker) as env:
               ...                                    # create rows: they are committed at once
               with running_cluster(env | {"HMS_STEP_LEASE_SECONDS": "6"}) as cluster:
                   wait_until(lambda: ..., timeout=20, what="the instance to complete")
                   cluster.kill()                     # SIGKILL the whole process group

   The file is a copy of a template migrated once per test session in a subprocess (so the
   contenttypes cache of this process never sees it). They cover the SQLite + ORM-broker shape
   and skip in the PostgreSQL + Redis pass, where tests/system/chaos.py kills clusters instead.
"""

import atexit
import importlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from django.conf import settings
from django.db import connections
from django.test import TestCase
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# Processes (a real cluster, servers) come from the one harness the system runs use too.
from tests.system.harness import MANAGE, ROOT, Cluster, running_cluster, wait_until

__all__ = ["MANAGE", "PROJECT", "Cluster", "running_cluster", "wait_until"]

PROJECT = ROOT

# --- Real HTTP services ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One answer of a scripted service; `delay` holds the request open that long first."""

    status: int = 200
    json: Any = None
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


OK = Reply(200, {"result": "ok", "data": {}})
ACCEPTED = Reply(202, {"status": "accepted"})


@dataclass(frozen=True)
class Received:
    """One request a scripted service received, with the wall-clock time it arrived."""

    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def attempt(self) -> int:
        return self.json["attempt"]

    @property
    def idempotency_key(self) -> str:
        return self.headers.get("Idempotency-Key", "")


class ScriptedService:
    """A POST endpoint on a local server that answers its replies in order (the last repeats)."""

    def __init__(self, server: HTTPServer, path: str = "/service", replies=(OK,)):
        self.server, self.path = server, path
        self.received: list[Received] = []
        self._replies = list(replies)
        self._lock = threading.Lock()
        server.expect_request(path, method="POST").respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return self.server.url_for(self.path)

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.received.append(Received(time.time(), dict(request.headers), request.get_data()))
            reply = self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]
        if reply.delay:
            time.sleep(reply.delay)
        body = json.dumps(reply.json) if reply.json is not None else reply.body
        content_type = "application/json" if reply.json is not None else "text/plain"
        return Response(
            body, status=reply.status, headers=dict(reply.headers), content_type=content_type
        )


class _QuickHTTPServer(HTTPServer):
    def thread_target(self) -> None:
        # werkzeug polls for shutdown every 0.5 s by default: a slow stop for every test.
        self.server.serve_forever(poll_interval=0.02)


@contextmanager
def local_http_server() -> Iterator[HTTPServer]:
    """A threaded HTTP server on 127.0.0.1 and a free port, stopped afterwards."""
    server = _QuickHTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/service"


class LocalServerMixin:
    """For TestCase classes: `self.server`, a fresh local HTTP server for every test."""

    @pytest.fixture(autouse=True)
    def _local_server(self):
        with local_http_server() as server:
            self.server = server
            yield


# --- django-q2's stand-in for TestCase tests ------------------------------------------------


class StandInQueue:
    """Keeps the messages our code sends after commit and runs them on demand, like a worker."""

    RUN_STEP = "workflows_app.tasks.run_step"

    def __init__(self, case: TestCase):
        self.case = case
        self.messages: list[tuple[str, tuple]] = []
        patcher = patch("workflows_app.runtime.queue.async_task", side_effect=self._send)
        patcher.start()
        case.addCleanup(patcher.stop)

    def _send(self, func: str, *args, **options) -> None:
        self.messages.append((func, args))

    def committed(self, action: Callable, *args, **kwargs):
        """Run `action` as if its transactions committed: their on_commit callbacks fire."""
        with self.case.captureOnCommitCallbacks(execute=True):
            return action(*args, **kwargs)

    def start(self, definition, payload: dict | None = None):
        """Start an instance; its first message waits in the queue."""
        from workflows_app import runtime

        instance, _ = self.committed(
            runtime.start_instance, definition=definition, payload=payload or {}
        )
        return instance

    def work(self, limit: int = 20) -> int:
        """Run the waiting messages in order (and those they send); returns how many ran."""
        ran = 0
        while self.messages and ran < limit:
            func, args = self.messages.pop(0)
            module, _, name = func.rpartition(".")
            self.committed(getattr(importlib.import_module(module), name), *args)
            ran += 1
        return ran

    def tick(self, now) -> int:
        """One timer pass at `now` (runtime.process_due); returns how many runs it acted on."""
        from workflows_app import runtime

        return self.committed(runtime.process_due, now=now)

    def settle(self, instance, *, rounds: int = 10) -> None:
        """Work, and let each retry's backoff pass, until no run of `instance` is queued."""
        from workflows_app.models import RunState, StepRun

        for _ in range(rounds):
            self.work()
            run = StepRun.objects.filter(instance=instance, state=RunState.QUEUED).first()
            if run is None:
                return
            self.tick(run.wake_at)
        raise AssertionError(f"{instance} still has a queued run after {rounds} rounds")


# --- A file database and a real cluster ------------------------------------------------------

_template_folder: Path | None = None


def subprocess_env(*, database: Path, **overrides: str) -> dict[str, str]:
    """The environment of a manage.py subprocess on `database`: the ORM broker, INFO logs."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.process_settings",
        DATABASE_URL=f"sqlite:///{database}",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


def _migrated_template() -> Path:
    """A migrated SQLite file, made once per test session."""
    global _template_folder
    if _template_folder is None:
        folder = Path(tempfile.mkdtemp(prefix="hms-test-template-"))
        atexit.register(shutil.rmtree, folder, True)
        subprocess.run(
            [*MANAGE, "migrate", "--noinput", "-v0"],
            cwd=PROJECT,
            check=True,
            timeout=180,
            env=subprocess_env(database=folder / "db.sqlite3"),
            capture_output=True,
        )
        _template_folder = folder
    return _template_folder / "db.sqlite3"


def _copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite database whole (its WAL included) with SQLite's backup API."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


@contextmanager
def file_database(folder: Path, django_db_blocker) -> Iterator[dict[str, str]]:
    """A migrated SQLite file as this process's `default` database; yields a subprocess env."""
    if connections["default"].vendor != "sqlite" or "orm" not in settings.Q_CLUSTER:
        # This process enqueues through the broker its settings name; the cluster must share it.
        pytest.skip(
            "needs the SQLite + ORM-broker shape; tests/system/chaos.py covers PostgreSQL + Redis"
        )
    path = folder / "db.sqlite3"
    _copy_database(_migrated_template(), path)
    original = connections["default"]
    shared = original.__class__({**original.settings_dict, "NAME": str(path)}, alias="default")
    connections["default"] = shared
    try:
        with django_db_blocker.unblock():
            yield subprocess_env(database=path)
    finally:
        with django_db_blocker.unblock():
            shared.close()
        connections["default"] = original
