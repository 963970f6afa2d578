"""The seed's own portal clients (examples/clients/*.js) run unchanged with node against a live
server set up as `make run` sets it up: the seed loaded from its file, public, no token."""

import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import run_queued
from workflows_app.authoring import publishing
from workflows_app.management.commands.setup_demo import DEMO_PUBLIC
from workflows_app.management.demo_server import serve
from workflows_app.models import Service, WorkflowInstance

ROOT = Path(settings.BASE_DIR)
CLIENTS = ROOT / "examples" / "clients"

pytestmark = pytest.mark.integration


def node() -> str:
    """Node 18 or newer (built-in fetch), or skip saying why."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: the seed's JavaScript clients cannot run")
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    if int(version.strip().lstrip("v").split(".")[0]) < 18:
        pytest.skip(f"node {version.strip()} has no built-in fetch: the clients need node 18+")
    return found


@pytest.fixture
def demo_validation():
    """The demo validation service of `make run`, on a free port."""
    server = serve(port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/validate"
    server.shutdown()
    server.server_close()


def client(script: str, base_url: str, *args: str) -> str:
    done = subprocess.run(
        [node(), str(CLIENTS / script), *args],
        env={"HMS_URL": base_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_start_permit_and_check_status_print_the_instance_the_step_and_the_history(
    live_server, transactional_db, demo_validation
):
    node()
    files = [ROOT / "workflows" / "building-permit.json", ROOT / "workflows" / "services.yaml"]
    publishing.load_files(files, public=DEMO_PUBLIC)  # as setup_demo does for `make run`
    Service.objects.filter(name="validationSvc").update(url=demo_validation)

    started = client("startPermit.js", live_server.url)
    match = re.search(r"^Instance ID: ([0-9a-f-]{36})$", started, re.M)
    assert match, started
    instance = WorkflowInstance.objects.get(uuid=match.group(1))
    run_queued(instance)  # a worker calls the demo validation service

    status = client("checkStatus.js", live_server.url, match.group(1))
    lines = status.splitlines()
    assert lines[:3] == ["Status: running", "Current Step: approve", "History:"]
    assert re.fullmatch(r"  validate: ok at \d{4}-\d\d-\d\dT[\d:.]+\+00:00", lines[3])
