"""The "3 HTTP steps end to end" figure: a workflow of three `http` steps against a local
service that answers at once (bench/echo_service.py), run by the qcluster's two workers.

Each step is a real POST through runtime/outbound.py (the pooled session, the address check,
the deadline); the figure is instances per second from the first start to the last end,
against django-q2's one-row tasks per second ÷ 3 measured in the same round.
"""

import contextlib
import os
import sys

from django.db import transaction

from bench import common
from workflows_app import definitions
from workflows_app.authoring import publishing
from workflows_app.models import Service, WorkflowDefinition

THREE_HTTP = {
    "id": "bench-three-http",
    "steps": [{"id": s, "service": "benchHttpSvc"} for s in ("one", "two", "three")],
}


@contextlib.contextmanager
def echo_service():
    """The local service, running for the `with` block; yields its URL."""
    port = common.free_port()
    log = common.ROOT / "bench" / "results" / "echo-service.log"
    proc = common.spawn(
        [sys.executable, "-m", "bench.echo_service", str(port)], env=dict(os.environ), log_path=log
    )
    try:
        common.wait_http(f"http://127.0.0.1:{port}/", proc=proc, timeout=30)
        yield f"http://127.0.0.1:{port}/step"
    finally:
        common.stop(proc, grace=2)


def install(url: str) -> WorkflowDefinition:
    """The service (its URL this run's) and the workflow."""
    Service.objects.update_or_create(
        name="benchHttpSvc", defaults={"kind": "http", "url": url, "timeout_seconds": 10}
    )
    with transaction.atomic():
        spec = definitions.parse_definition(THREE_HTTP, source="bench")
        return publishing.publish(spec)[0]
