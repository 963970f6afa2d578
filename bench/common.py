"""What the benchmarks share: the test suite's one process harness (tests/system/harness.py:
start, wait for, stop and kill servers) and its database helpers (tests/system/stores.py),
plus the bench's own progress lines and JSON commands.

The dependency goes one way only: bench may use the tests' harness, tests never import bench
(an import-linter contract).
"""

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.system.harness import (  # noqa: F401 - the bench's names for the shared harness
    CLUSTER_RUNNING,
    PYTHON,
    ROOT,
    StartFailed,
    django_env,
    free_port,
    kill,
    manage,
    spawn,
    start_gunicorn,
    start_qcluster,
    start_runserver,
    stop,
    stop_servers_on_sigterm,
    wait_for_log,
    wait_http,
)
from tests.system.stores import (  # noqa: F401
    flush_redis,
    format_table,
    percentile,
    recreate_postgres_database,
    unreachable,
    with_database_name,
)

PROGRESS = "PROGRESS "  # a bench subprocess's stderr line that run.py echoes


def progress(text: str) -> None:
    """Tell run.py (which echoes it with the elapsed time) what this subprocess does now."""
    print(f"{PROGRESS}{text}", file=sys.stderr, flush=True)


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
