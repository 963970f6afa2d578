"""The database with a million instances: build it once, then read what the HTTP runs need.

    python -m bench.bigdb build COUNT   migrate, publish, generate COUNT waiting instances
                                        (skipped when the database already holds them)
    python -m bench.bigdb info          a token, the ids to request, the idle sweep's cost
    python -m bench.bigdb trim LAST_PK  delete what a run added: instances after LAST_PK
                                        with their runs and events
Each prints one JSON line. DATABASE_URL names the database. The HTTP runs use the built
database itself and trim it afterwards (and before, after a run that did not finish):
copying a gigabyte for each run left its write-back to overlap the measurements.
"""

import json
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench import dataset, sweep_bench  # noqa: E402
from workflows_app.models import Event, StepRun, WorkflowDefinition, WorkflowInstance  # noqa: E402


def build(count: int) -> dict:
    call_command("migrate", verbosity=0, interactive=False)
    dataset.install_workflows()
    have = WorkflowInstance.objects.count()
    if have < count:
        dataset.generate_waiting(count - have)
    elif have > count:  # an earlier run stopped before trimming what it added
        trim(WorkflowInstance.objects.order_by("pk").values_list("pk", flat=True)[count - 1])
    return {"instances": WorkflowInstance.objects.count()}


def trim(last_pk: int) -> dict:
    """Delete the instances after `last_pk`, their runs and events (plain DELETEs: the ORM
    would collect every row in Python first)."""
    deleted = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for model, column in (
            (Event, "instance_id"),
            (StepRun, "instance_id"),
            (WorkflowInstance, "id"),
        ):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {column} > %s", [last_pk])
            deleted += cursor.rowcount
    return {"deleted": deleted}


FIRST_READS = 20_000


def info() -> dict:
    total = WorkflowInstance.objects.count()
    seed = WorkflowDefinition.objects.get(key="building-permit", version=1)
    middle = WorkflowInstance.objects.filter(definition=seed, pk__gte=total // 2).order_by("pk")
    instance = middle.first()
    return {
        "instances": total,
        "last_pk": WorkflowInstance.objects.order_by("-pk").values_list("pk", flat=True)[0],
        "token": dataset.issue_token(),
        "uuid": str(instance.uuid),
        "pk": instance.pk,
        # Instances for the "first read" figures: each request reads another one.
        "uuids": [str(u) for u in middle.values_list("uuid", flat=True)[:FIRST_READS]],
        **sweep_bench.idle_sweep(),
    }


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "build":
        answer = build(int(sys.argv[2]))
    elif command == "trim":
        answer = trim(int(sys.argv[2]))
    else:
        answer = info()
    print(json.dumps(answer))
