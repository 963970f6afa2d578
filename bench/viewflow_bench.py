"""The peer: django-viewflow 2.4 in its own virtualenv (bench/.venv-viewflow, gitignored).

viewflow is AGPL, so it is never a dependency of the project: the benchmark creates this
environment from PyPI on first use and runs bench/viewflow_peer/run.py inside it, with the
same Django version and database drivers as ours.
"""

import subprocess
import sys
from pathlib import Path

import django

from bench import common

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv-viewflow"
PYTHON = VENV / "bin" / "python"
RUNNER = ROOT / "viewflow_peer" / "run.py"
PACKAGES = [
    "django-viewflow==2.4.*",
    f"django=={django.get_version()}",
    "dj-database-url>=2.3",
    "psycopg[binary]>=3.2",
]


def ensure_venv() -> Path:
    """Create the peer's virtualenv with viewflow when it is missing; its python."""
    stamp = VENV / ".installed"
    wanted = "\n".join(PACKAGES)
    if stamp.exists() and stamp.read_text() == wanted:
        return PYTHON
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    stamp.write_text(wanted)
    return PYTHON


def run(database_url: str, *args: str, timeout: float = 600) -> dict:
    """One command of the peer's runner against `database_url`; its JSON answer."""
    env = {"VIEWFLOW_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return common.json_command(
        [str(PYTHON), str(RUNNER), *args], env=env, what=f"viewflow peer {args[0]}", timeout=timeout
    )
