"""Process helpers of the benchmarks (the tests have their own: tests/system/harness.py).

Servers (qcluster, gunicorn) run in their own session, so stopping one stops its whole
process group: SIGTERM first, SIGKILL after a deadline. Everything binds to 127.0.0.1 and
every wait has a time limit.
"""

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dj_database_url

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PROGRESS = "PROGRESS "  # a bench subprocess's stderr line that run.py echoes


def progress(text: str) -> None:
    """Tell run.py (which echoes it with the elapsed time) what this subprocess does now."""
    print(f"{PROGRESS}{text}", file=sys.stderr, flush=True)


CLUSTER_RUNNING = re.compile(r"Q Cluster \S+ (\[\S+\] )?running")


class StartFailed(RuntimeError):
    """A server did not become ready in time, or exited while starting."""


# --- Environment and databases ---------------------------------------------------------------


def django_env(*, database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    """This process's environment pointed at one database and broker (no Redis: ORM broker)."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env["DJANGO_SETTINGS_MODULE"] = "tests.process_settings"
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    """Run one `manage.py` command to its end; its output, or CalledProcessError."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done.stdout


def json_command(
    args: Sequence[str], *, env: dict[str, str], what: str, cwd: Path | None = None, timeout: float
) -> dict:
    """Run a command that answers with one JSON line last; raise with its stderr's end."""
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def unreachable(database_url: str, redis_url: str) -> str:
    """Why the PostgreSQL server or Redis of these URLs does not answer; "" when both do."""
    import psycopg
    import redis

    db = dj_database_url.parse(database_url)
    try:
        psycopg.connect(**_pg_args(db, "postgres"), connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {db['HOST']}:{db['PORT']} does not answer: {exc}".strip()
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {redis_url} does not answer: {exc}"
    return ""


def recreate_postgres_database(database_url: str) -> None:
    """Drop (disconnecting its clients) and create the database the URL names: a clean slate."""
    import psycopg
    from psycopg import sql

    db = dj_database_url.parse(database_url)
    with psycopg.connect(**_pg_args(db, "postgres"), autocommit=True, connect_timeout=5) as conn:
        name = sql.Identifier(db["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _pg_args(db: dict, dbname: str) -> dict:
    return {
        "dbname": dbname,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "host": db["HOST"],
        "port": db["PORT"] or 5432,
    }


def with_database_name(database_url: str, name: str) -> str:
    """The same server URL with another database name."""
    base, _, _ = database_url.rpartition("/")
    return f"{base}/{name}"


def flush_redis(redis_url: str) -> None:
    """Empty the Redis database of this URL (old queue messages must not reach a new run)."""
    import redis

    redis.Redis.from_url(redis_url, socket_connect_timeout=3).flushdb()


# --- Processes -------------------------------------------------------------------------------


def stop_servers_on_sigterm() -> None:
    """Make SIGTERM unwind this process (running `finally:` blocks that stop its servers)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"stopped by SIGTERM ({signal.SIGTERM})"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args: Sequence[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start a process in its own session, its output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(args),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen, *, grace: float = 10.0) -> int | None:
    """SIGTERM the process; SIGKILL its group if it has not exited after `grace` seconds.

    Only the leader gets SIGTERM: it stops its own children in order (a qcluster whose
    workers all get SIGTERM too waits for them forever).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    kill(proc)  # the group: whatever is left of it
    return proc.returncode


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the whole process group at once, as a machine that loses power."""
    _signal_group(proc, signal.SIGKILL)
    proc.wait(timeout=10)


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


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


def start_qcluster(*, env: dict[str, str], log_path: Path, timeout: float = 60) -> subprocess.Popen:
    """`manage.py qcluster`, returned once it logs that it is running."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    proc = spawn([PYTHON, "manage.py", "qcluster"], env=env, log_path=log_path)
    try:
        wait_for_log(log_path, CLUSTER_RUNNING, proc=proc, offset=offset, timeout=timeout)
    except BaseException:  # a time-out, Ctrl-C...: never leave a server behind
        stop(proc, grace=2)
        raise
    return proc


def start_gunicorn(
    *,
    env: dict[str, str],
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
    proc = spawn(
        [PYTHON, "-m", "gunicorn", "hms_site.wsgi", *options.split()], env=env, log_path=log_path
    )
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


# --- Reporting -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (Markdown pipe layout, so docs can paste it as is)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
