"""The one process harness of the test suite: the integration tests, the chaos run and the
load run start their servers (qcluster, runserver, gunicorn) here, wait for them to be ready,
kill and stop them.

Servers run in their own session, so a kill reaches the whole process group at once, as a
machine that loses power; a stop sends SIGTERM to the leader only (a qcluster whose workers
all get SIGTERM waits for them forever), then SIGKILLs what is left after a deadline.
Everything binds to 127.0.0.1 and every wait has a time limit.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(ROOT / "manage.py")]
CLUSTER_RUNNING = re.compile(r"Q Cluster \S+ (\[\S+\] )?running")


class StartFailed(RuntimeError):
    """A server did not become ready in time, or exited while starting."""


def django_env(*, database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    """This process's environment pointed at one database and broker (no Redis: ORM broker),
    with the settings of processes that tests start (tests/process_settings.py)."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env["DJANGO_SETTINGS_MODULE"] = "tests.process_settings"
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(*args: str, env: Mapping[str, str], timeout: float = 180) -> str:
    """Run one `manage.py` command to its end; its output, or CalledProcessError."""
    done = subprocess.run(
        [*MANAGE, *args],
        cwd=ROOT,
        env=dict(env),
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout


def stop_servers_on_sigterm() -> None:
    """Make SIGTERM unwind this process (running `finally:` blocks that stop its servers)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"stopped by SIGTERM ({signal.SIGTERM})"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(
    args: Sequence[str], *, env: Mapping[str, str], log_path: Path | None
) -> subprocess.Popen:
    """Start a process in its own session, its output appended to `log_path` (or piped as
    text when None)."""
    if log_path is None:
        return _popen(args, env, stdout=subprocess.PIPE, text=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return _popen(args, env, stdout=log)


def _popen(args: Sequence[str], env: Mapping[str, str], **output) -> subprocess.Popen:
    """A process in its own session, its stderr with its stdout, no stdin."""
    return subprocess.Popen(
        list(args),
        cwd=ROOT,
        env=dict(env),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        **output,
    )


def stop(proc: subprocess.Popen, *, grace: float = 10.0) -> int | None:
    """SIGTERM the leader; SIGKILL the group if it has not exited after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    kill(proc)  # the group: whatever is left of it
    return proc.returncode


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the whole process group at once, as a machine that loses power."""
    signal_group(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=10)


def signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def wait_for_log(
    log_path: Path,
    pattern: re.Pattern,
    *,
    proc: subprocess.Popen,
    offset: int = 0,
    timeout: float = 60,
) -> None:
    """Wait until `pattern` appears in the log after `offset`; StartFailed on exit or time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_bytes()[offset:].decode(errors="replace") if log_path.exists() else ""
        if pattern.search(text):
            return
        if proc.poll() is not None:
            raise StartFailed(f"{log_path.name}: exited with {proc.returncode}:\n{text[-2000:]}")
        time.sleep(0.2)
    raise StartFailed(f"{log_path.name}: no line matching {pattern.pattern!r} in {timeout:g} s")


def start_qcluster(
    *, env: Mapping[str, str], log_path: Path, timeout: float = 60
) -> subprocess.Popen:
    """`manage.py qcluster`, returned once it logs that it is running."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    proc = spawn([*MANAGE, "qcluster"], env=env, log_path=log_path)
    try:
        wait_for_log(log_path, CLUSTER_RUNNING, proc=proc, offset=offset, timeout=timeout)
    except BaseException:  # a time-out, Ctrl-C...: never leave a server behind
        stop(proc, grace=2)
        raise
    return proc


def start_gunicorn(
    *,
    env: Mapping[str, str],
    port: int,
    log_path: Path,
    workers: int = 2,
    threads: int = 1,
    keep_alive: int = 75,
    timeout: float = 60,
) -> subprocess.Popen:
    """gunicorn serving the site on 127.0.0.1:`port`, returned once it answers HTTP.

    Keep-alive is long, as behind a load balancer (docs/deploy.md): with gunicorn's default
    of 2 s a busy worker may close a connection just as a client reuses it.
    """
    options = (
        f"--bind 127.0.0.1:{port} --workers {workers} --threads {threads} "
        f"--worker-class gthread --keep-alive {keep_alive} --graceful-timeout 5 --timeout 60 "
        "--backlog 2048"
    )
    args = [PYTHON, "-m", "gunicorn", "hms_site.wsgi", *options.split()]
    return _serving(spawn(args, env=env, log_path=log_path), port, timeout)


def start_runserver(
    *, env: Mapping[str, str], port: int, log_path: Path, timeout: float = 60
) -> subprocess.Popen:
    """`manage.py runserver` (threaded, no reloader) on 127.0.0.1:`port`, once it answers."""
    args = [*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload", "--nostatic"]
    return _serving(spawn(args, env=env, log_path=log_path), port, timeout)


def _serving(proc: subprocess.Popen, port: int, timeout: float) -> subprocess.Popen:
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=timeout)
    except BaseException:  # a time-out, Ctrl-C...: never leave a server behind
        stop(proc, grace=2)
        raise
    return proc


def wait_http(url: str, *, proc: subprocess.Popen | None = None, timeout: float = 60) -> int:
    """Wait until `url` answers at all (any status); return that status."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # The first request of a fresh worker imports and warms up the whole site.
            return requests.get(url, timeout=30).status_code
        except (requests.ConnectionError, requests.Timeout):
            if proc is not None and proc.poll() is not None:
                raise StartFailed(f"{url}: the server exited with {proc.returncode}") from None
            time.sleep(0.2)
    raise StartFailed(f"{url}: no answer in {timeout:g} s")


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1):
    """The first truthy value of `predicate()` within `timeout` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """A `manage.py qcluster` in its own session whose output a test reads line by line."""

    def __init__(self, env: Mapping[str, str]):
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.process = spawn([*MANAGE, "qcluster"], env=env, log_path=None)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((round(time.monotonic() - self.started, 2), line.rstrip()))

    @property
    def output(self) -> str:
        return "\n".join(f"[{at:6.2f}s] {line}" for at, line in self.lines)

    def wait_for(self, pattern: str, *, timeout: float) -> bool:
        """Whether a line matching `pattern` appeared within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(re.search(pattern, line) for _, line in list(self.lines)):
                return True
            time.sleep(0.05)
        return any(re.search(pattern, line) for _, line in list(self.lines))

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once: nothing gets to clean up."""
        kill(self.process)

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM the main process, then SIGKILL whatever is left of the group."""
        stop(self.process, grace=grace)


@contextlib.contextmanager
def running_cluster(env: Mapping[str, str], *, startup_timeout: float = 60.0) -> Iterator[Cluster]:
    """A qcluster on `env`'s database, started and running; always stopped afterwards."""
    cluster = Cluster(env)
    try:
        if not cluster.wait_for(CLUSTER_RUNNING.pattern, timeout=startup_timeout):
            raise RuntimeError(f"qcluster did not start:\n{cluster.output}")
        yield cluster
    finally:
        cluster.stop()
