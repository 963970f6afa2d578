"""HTTP figures: gunicorn (2 workers, persistent connections) driven by 8 clients on the same
machine.

The clients are bench/hload.c (compiled here with the system's C compiler into
bench/results/): one thread per keep-alive connection, a closed loop each, as wrk's
connections are; wrk itself is not needed. Its CPU time and the server's are measured and
reported next to the rates, so a reader sees that the load generator did not starve the
server. Endpoints are measured in interleaved rounds, the one-row view first in each round;
"unchanged" polls send the If-None-Match their previous answer's ETag gave (304).
"""

import resource
import shutil
import subprocess
import time
from pathlib import Path

from bench import common
from bench.procs import _group_members, cpu_seconds, peak_rss_mib

CONNECTIONS = 8
HLOAD_SOURCE = common.ROOT / "bench" / "hload.c"
HLOAD = common.ROOT / "bench" / "results" / "hload"
SLOW: set[str] = set()  # pages too slow for wrk, timed one by one (none since the board snapshot)
START_BODY = '{"workflowId": "building-permit", "payload": {"applicant": "Ada"}}'


def endpoints(info: dict) -> dict[str, tuple[str, str | None]]:
    """name -> (path, POST body or None)."""
    return {
        "one_row": (f"/bench/one-row/{info['pk']}", None),
        "start": ("/api/workflows/start", START_BODY),
        "status": (f"/api/workflows/{info['uuid']}/status", None),
        "status_304": (f"/api/workflows/{info['uuid']}/status", None),
        "status_first": (f"/api/workflows/{info['uuid']}/status", None),
        "tracker": (f"/track/{info['uuid']}/", None),
        "tracker_first": (f"/track/{info['uuid']}/", None),
        "tracker_poll_304": (f"/track/{info['uuid']}/", None),
        "board": ("/board/", None),
    }


# Endpoints read at a different instance on every request (hload -P): what a process that
# keeps the answers it built (web/rendered.py) does for a reader it has not served yet.
FIRST_READS = {"status_first": "/api/workflows/{}/status", "tracker_first": "/track/{}/"}


def first_reads_file(name: str, info: dict, start: int) -> Path:
    """The paths of endpoint `name` for every instance of info["uuids"], from `start` on (each
    round goes on where the last stopped, so no round reads an instance read before)."""
    uuids = (
        info["uuids"][start % len(info["uuids"]) :] + info["uuids"][: start % len(info["uuids"])]
    )
    found = HLOAD.parent / f"paths-{name}.txt"
    found.write_text("".join(FIRST_READS[name].format(u) + "\n" for u in uuids))
    return found


def build_hload() -> Path | None:
    """The compiled load generator; None (with the reason printed) without a C compiler."""
    if HLOAD.exists() and HLOAD.stat().st_mtime >= HLOAD_SOURCE.stat().st_mtime:
        return HLOAD
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("bench: no C compiler (cc/gcc) to build bench/hload.c: HTTP figures skipped")
        return None
    HLOAD.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([compiler, "-O2", "-pthread", "-o", str(HLOAD), str(HLOAD_SOURCE)], check=True)
    return HLOAD


def _headers(name: str, url: str, token: str) -> list[str]:
    """The request headers of endpoint `name`; an unchanged poll's from a first request."""
    import requests

    headers = {"Authorization": f"Bearer {token}"}
    if name == "tracker_poll_304":
        headers = {"HX-Request": "true"}
    if name.endswith("_304"):
        tag = requests.get(url, headers=headers, timeout=60).headers["ETag"]
        headers["If-None-Match"] = tag
    return [f"{key}: {value}" for key, value in headers.items()]


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


def hload(
    port: int,
    path: str,
    *,
    seconds: float,
    headers: list[str],
    body: str | None,
    paths: Path | None = None,
) -> dict:
    """One load run: requests/s, p99 in ms, errors, 304s, and the generator's CPU seconds.
    With `paths`, each request reads the next path of that file instead of `path`."""
    args = [str(HLOAD), "127.0.0.1", str(port), path, f"{seconds:g}", str(CONNECTIONS)]
    for header in headers:
        args += ["-H", header]
    if body:
        args += ["-b", body]
    if paths:
        args += ["-P", str(paths)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        args, capture_output=True, text=True, timeout=seconds + 120, check=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = dict(line.split() for line in out.splitlines() if line.strip())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rps": float(found["rps"]),
        "p99_ms": float(found["p99_ms"]),
        "errors": int(found["4xx"]) + int(found["5xx"]) + int(found["errors"]),
        "not_modified": int(found["3xx"]),
        "requests": int(found["requests"]),
        "wrk_cpu_s": cpu,
    }


# What runserver is measured on (the full bench only): the polled and the written paths.
RUNSERVER_ENDPOINTS = ("one_row", "start", "status", "status_304", "status_first", "tracker")


def measure(
    env: dict,
    info: dict,
    *,
    rounds: int,
    seconds: float,
    log: Path,
    runserver: bool = False,
) -> dict:
    """Interleaved rounds over every endpoint (gunicorn), or over RUNSERVER_ENDPOINTS
    (`manage.py runserver`, threaded, as `make run` serves); raw samples, CPU shares and
    peak RSS."""
    port = common.free_port()
    if runserver:
        server = common.start_runserver(env=env, port=port, log_path=log)
    else:
        server = common.start_gunicorn(env=env, port=port, log_path=log, workers=2, threads=1)
    chosen = {
        name: endpoint
        for name, endpoint in endpoints(info).items()
        if not runserver or name in RUNSERVER_ENDPOINTS
    }
    samples: dict[str, list] = {name: [] for name in chosen}
    read_so_far = dict.fromkeys(FIRST_READS, 0)
    try:
        members = [p for p in _group_members(server.pid) if p != server.pid]
        workers = [server.pid] if runserver else members  # runserver serves in its own process
        for name, (path, _script) in chosen.items():  # warm every worker's caches
            for _ in range(1 if name in SLOW else 4):
                common.wait_http(f"http://127.0.0.1:{port}{path}", timeout=120)
        for _ in range(rounds):
            for name, (path, body) in chosen.items():
                _settle(workers)
                url = f"http://127.0.0.1:{port}{path}"
                headers = _headers(name, url, info["token"])
                cpu_before, began = sum(map(cpu_seconds, workers)), time.monotonic()
                if name in SLOW:
                    sample = sequential(url, token=info["token"])
                elif name in FIRST_READS:
                    paths = first_reads_file(name, info, read_so_far[name])
                    sample = hload(
                        port, path, seconds=seconds, headers=headers, body=body, paths=paths
                    )
                    read_so_far[name] += sample["requests"]
                else:
                    sample = hload(port, path, seconds=seconds, headers=headers, body=body)
                elapsed = time.monotonic() - began
                sample["server_cpu_share"] = (sum(map(cpu_seconds, workers)) - cpu_before) / elapsed
                sample["wrk_cpu_share"] = sample.pop("wrk_cpu_s") / elapsed
                samples[name].append(sample)
        peak = peak_rss_mib(server.pid, exclude_leader=not runserver)
    finally:
        common.stop(server)
    return {"samples": samples, "web_peak_mib": peak}
