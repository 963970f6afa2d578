"""What the figures were measured on: processor, memory, versions of everything involved."""

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench import common, viewflow_bench


def machine(server: str, redis_base: str) -> dict:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024**2, 1),
        "python": platform.python_version(),
        "django": metadata.version("django"),
        "django_q2": metadata.version("django-q2"),
        "gunicorn": metadata.version("gunicorn"),
        "postgresql": _quiet(
            ["psql", common.with_database_name(server, "postgres"), "-tAc", "SHOW server_version"]
        ),
        "redis": _quiet(["redis-cli", "-u", f"{redis_base}/0", "INFO", "server"], "redis_version:"),
        "viewflow": _quiet(
            [
                str(viewflow_bench.PYTHON),
                "-c",
                "import importlib.metadata as m; print(m.version('django-viewflow'))",
            ]
        ),
        "wrk": "load generator bench/hload.c (8 keep-alive connections)",
        "load_before": os.getloadavg(),
    }


def _quiet(args: list[str], prefix: str = "") -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if prefix:
        lines = [line[len(prefix) :] for line in lines if line.startswith(prefix)]
    return lines[0] if lines else "unknown"
