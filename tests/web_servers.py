"""A real web server for a test: `manage.py runserver` or gunicorn on 127.0.0.1, always stopped.

    with web_server("gunicorn", env, log_path=tmp_path / "web.log", workers=2) as url:
        requests.get(f"{url}/healthz", timeout=5)

`env` is a subprocess environment (tests/integration_helpers.py `subprocess_env`, or one of
your own with DATABASE_URL and DJANGO_SETTINGS_MODULE=tests.process_settings). The processes
come from the one harness of the suite (tests/system/harness.py).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.system import harness
from tests.system.harness import free_port

__all__ = ["free_port", "web_server"]


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
    if kind == "runserver":  # one process, a thread per request: the shape of `make run`
        process = harness.start_runserver(
            env=env, port=port, log_path=log_path, timeout=startup_timeout
        )
    elif kind == "gunicorn":
        process = harness.start_gunicorn(
            env=env,
            port=port,
            log_path=log_path,
            workers=workers,
            threads=threads,
            timeout=startup_timeout,
        )
    else:
        raise ValueError(f"unknown server {kind!r}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        harness.stop(process, grace=8)
