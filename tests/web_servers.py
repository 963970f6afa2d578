"""A real web server for a test: `manage.py runserver` or gunicorn on 127.0.0.1, always stopped.

    with web_server("gunicorn", env, log_path=tmp_path / "web.log", workers=2) as url:
        requests.get(f"{url}/healthz", timeout=5)

`env` is a subprocess environment (tests/integration_helpers.py `subprocess_env`, or one of
your own with DATABASE_URL and DJANGO_SETTINGS_MODULE=tests.process_settings).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _command(kind: str, port: int, *, workers: int, threads: int) -> list[str]:
    if kind == "runserver":  # one process, a thread per request: the shape of `make run`
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    if kind == "gunicorn":
        return [
            *(sys.executable, "-m", "gunicorn", "hms_site.wsgi"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
            *("--threads", str(threads), "--worker-class", "gthread"),
            *("--graceful-timeout", "3", "--timeout", "60", "--keep-alive", "75"),
        ]
    raise ValueError(f"unknown server {kind!r}")


@contextmanager
def web_server(
    kind: str,
    env: Mapping[str, str],
    *,
    log_path: Path,
    workers: int = 2,
    threads: int = 4,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Start the server, wait until it answers HTTP at all, yield its base URL; stop it."""
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            _command(kind, port, workers=workers, threads=threads),
            cwd=PROJECT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_answering(f"{url}/healthz?only=database", process, startup_timeout, log_path)
        yield url
    finally:
        _stop(process)


def _wait_answering(url: str, process: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=15)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer in {timeout:g} s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server, SIGKILL its whole group after a grace period."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=8)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)
