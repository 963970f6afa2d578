"""The viewflow peer's runner, executed with bench/.venv-viewflow/bin/python (never our venv).

    run.py setup                 migrate the peer's database, create the reviewer
    run.py measure COUNT PROCS   COUNT instances in PROCS processes; prints JSON (rate)
    run.py count                 data statements per instance in steady state; prints JSON

A person completes each approve task the way viewflow's own task view does: under the flow
lock, in one transaction, assign to themselves, start, execute (which runs notify inline).
"""

import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")

import django  # noqa: E402

DATA_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def setup() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    users = get_user_model().objects
    if not users.filter(username="reviewer").exists():
        users.create_superuser("reviewer", "reviewer@example.org", "pw")


def one_instance(reviewer, n: int):
    """Start one application and have the reviewer approve it: its whole life."""
    from django.db import transaction
    from permit.flows import PermitFlow

    process = PermitFlow.start.run(payload={"applicant": f"A{n}"})
    # As viewflow's task view does: the flow lock, one transaction, the task, its activation.
    with PermitFlow.lock(process.pk), transaction.atomic():
        task = PermitFlow.task_class.objects.get(process=process, flow_task=PermitFlow.approve)
        activation = PermitFlow.approve.activation_class(task)
        activation.assign(reviewer)
        activation.start(None)
        activation.execute()
    return process


def _worker(args) -> tuple[float, float, int]:
    count, offset = args
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    reviewer = get_user_model().objects.get(username="reviewer")
    one_instance(reviewer, -1)  # warm up: imports, the flow's lazy set-up
    began = time.time()
    for n in range(count):
        process = one_instance(reviewer, offset + n)
    process.refresh_from_db()
    connection.close()
    return began, time.time(), int(process.status == "DONE")


def measure(count: int, procs: int) -> dict:
    share = count // procs
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        spans = pool.map(_worker, [(share, i * share) for i in range(procs)])
    began, ended = min(s[0] for s in spans), max(s[1] for s in spans)
    return {"rate": share * procs / (ended - began), "done": all(s[2] for s in spans)}


def count() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    reviewer = get_user_model().objects.get(username="reviewer")
    one_instance(reviewer, -1)
    with CaptureQueriesContext(connection) as queries:
        one_instance(reviewer, -2)
    sql = [q["sql"] for q in queries.captured_queries]
    data = [s for s in sql if s.lstrip().upper().startswith(DATA_VERBS)]
    return {"data": len(data), "all": len(sql), "statements": data}


def main() -> None:
    command = sys.argv[1]
    if command == "measure":
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]))))
        return
    django.setup()
    if command == "setup":
        setup()
        print(json.dumps({"ok": True}))
    elif command == "count":
        print(json.dumps(count()))


if __name__ == "__main__":
    main()
