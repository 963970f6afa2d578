"""HTTP figures: gunicorn (2 workers, persistent connections) driven by wrk on the same machine.

wrk is a C program with one thread here; its CPU time and the server's are measured and
reported next to the rates, so a reader sees that the load generator did not starve the
server. Endpoints are measured in interleaved rounds, the one-row view first in each round.
"""

import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from bench import common
from bench.procs import _group_members, cpu_seconds, peak_rss_mib

CONNECTIONS = 4
SLOW: set[str] = set()  # pages too slow for wrk, timed one by one (none since the board snapshot)
START_BODY = '{"workflowId": "building-permit", "payload": {"applicant": "Ada"}}'
LUA_POST = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def endpoints(info: dict) -> dict[str, tuple[str, str | None]]:
    """name -> (path, lua script or None)."""
    return {
        "one_row": (f"/bench/one-row/{info['pk']}", None),
        "start": ("/api/workflows/start", LUA_POST % (START_BODY, info["token"])),
        "status": (f"/api/workflows/{info['uuid']}/status", None),
        "tracker": (f"/track/{info['uuid']}/", None),
        "board": ("/board/", None),
    }


def _settle(workers: list[int], *, limit: float = 120.0) -> None:
    """Wait until the server's workers are idle: a slow page's requests outlive wrk's run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(map(cpu_seconds, workers))
        time.sleep(0.3)
        if sum(map(cpu_seconds, workers)) - before < 0.02:
            return


def sequential(url: str, *, token: str, count: int = 2) -> dict:
    """A page too slow for wrk's window: `count` requests one after another (p99 = slowest)."""
    import requests

    times, errors = [], 0
    for _ in range(count):
        began = time.monotonic()
        reply = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=300)
        times.append(time.monotonic() - began)
        errors += reply.status_code >= 400
    return {
        "rps": count / sum(times),
        "p99_ms": max(times) * 1000,
        "errors": errors,
        "wrk_cpu_s": 0.0,
        "sequential": True,
    }


def wrk(url: str, *, seconds: float, token: str, script: str | None) -> dict:
    """One wrk run: requests/s, p99 in ms, errors, and wrk's own CPU seconds."""
    args = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "60s",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            args += ["-s", lua.name]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(
            [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out)[1]),
        "errors": _errors(out),
        "wrk_cpu_s": cpu,
    }


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _errors(out: str) -> int:
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(bad[1]) if bad else 0) + (sum(map(int, socket.groups())) if socket else 0)


def measure(env: dict, info: dict, *, rounds: int, seconds: float, log: Path) -> dict:
    """Interleaved rounds over every endpoint; raw samples, CPU shares and peak RSS."""
    port = common.free_port()
    server = common.start_gunicorn(env=env, port=port, log_path=log, workers=2, threads=1)
    samples: dict[str, list] = {name: [] for name in endpoints(info)}
    try:
        workers = [p for p in _group_members(server.pid) if p != server.pid]
        for name, (path, _script) in endpoints(info).items():  # warm every worker's caches
            for _ in range(1 if name in SLOW else 4):
                common.wait_http(f"http://127.0.0.1:{port}{path}", timeout=120)
        for _ in range(rounds):
            for name, (path, script) in endpoints(info).items():
                _settle(workers)
                cpu_before, began = sum(map(cpu_seconds, workers)), time.monotonic()
                url = f"http://127.0.0.1:{port}{path}"
                if name in SLOW:
                    sample = sequential(url, token=info["token"])
                else:
                    sample = wrk(url, seconds=seconds, token=info["token"], script=script)
                elapsed = time.monotonic() - began
                sample["server_cpu_share"] = (sum(map(cpu_seconds, workers)) - cpu_before) / elapsed
                sample["wrk_cpu_share"] = sample.pop("wrk_cpu_s") / elapsed
                samples[name].append(sample)
        peak = peak_rss_mib(server.pid, exclude_leader=True)
    finally:
        common.stop(server)
    return {"samples": samples, "web_peak_mib": peak}
