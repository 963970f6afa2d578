"""Profile the API and tracker hot paths in one process, through Django's test client (no
server, no network): milliseconds per request of each endpoint next to the one-row view, and
cProfile's top functions for the one named.

    DJANGO_SETTINGS_MODULE=bench.settings_bench DATABASE_URL=sqlite:///bench/results/prof_api.sqlite3 \\
        python -m bench.profile_api [status|status_cold|tracker|tracker_cold|start|one_row] [COUNT]

`status_cold` and `tracker_cold` read a different instance on every request (nothing kept in
the process for it); `status` and `tracker` read the same one again and again, as a portal
polling without an ETag, or many readers of one case, do.
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from tests.factories import make_definition, make_seed_services, make_token  # noqa: E402
from workflows_app import runtime  # noqa: E402
from workflows_app.models import Service, WorkflowDefinition, WorkflowInstance  # noqa: E402
from workflows_app.web import rendered  # noqa: E402

START_BODY = '{"workflowId": "building-permit", "payload": {"applicant": "Ada"}}'


def prepare(count: int) -> tuple[str, list[WorkflowInstance]]:
    call_command("migrate", verbosity=0, interactive=False)
    if not Service.objects.filter(name="validationSvc").exists():
        make_seed_services()  # a python validation, as the bench's HTTP figures have
    if not WorkflowDefinition.objects.filter(key="building-permit").exists():
        make_definition()
    definition = WorkflowDefinition.objects.filter(key="building-permit").latest("version")
    instances = [
        runtime.start_instance(definition=definition, payload={"applicant": "Ada"})[0]
        for _ in range(count)
    ]
    return make_token(f"prof-{time.time()}"), instances


def requests_for(name: str, token: str, instances: list[WorkflowInstance]):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    first = instances[0]
    if name == "one_row":
        return lambda i: client.get(f"/bench/one-row/{first.pk}")
    if name == "status":
        return lambda i: client.get(f"/api/workflows/{first.uuid}/status")
    if name == "status_cold":
        return lambda i: client.get(f"/api/workflows/{instances[i].uuid}/status")
    if name == "tracker":
        return lambda i: client.get(f"/track/{first.uuid}/")
    if name == "tracker_cold":
        return lambda i: client.get(f"/track/{instances[i].uuid}/")
    if name == "start":
        return lambda i: client.post(
            "/api/workflows/start", START_BODY, content_type="application/json"
        )
    raise SystemExit(f"unknown endpoint {name!r}")


def timed(call, count: int) -> float:
    rendered.clear()  # `status_cold` reads each instance for the first time in this process
    began = time.perf_counter()
    for i in range(count):
        response = call(i)
        assert response.status_code < 400, response.content[:300]
    return (time.perf_counter() - began) / count * 1000


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "status"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    setup_test_environment()
    token, instances = prepare(count)
    for each in ("one_row", "status", "status_cold", "tracker", "tracker_cold", "start"):
        call = requests_for(each, token, instances)
        call(0)  # warm
        print(f"{each:12} {timed(call, count):7.2f} ms/request")
    call = requests_for(name, token, instances)
    profile = cProfile.Profile()
    profile.enable()
    timed(call, count)
    profile.disable()
    pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
