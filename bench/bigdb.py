"""The database with a million instances: build it once, then read what the HTTP runs need.

    python -m bench.bigdb build COUNT   migrate, publish, generate COUNT waiting instances
                                        (skipped when the database already holds them)
    python -m bench.bigdb info          a token, the ids to request, the idle sweep's cost
Both print one JSON line. DATABASE_URL names the database.
"""

import json
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
django.setup()

from django.core.management import call_command  # noqa: E402

from bench import dataset, sweep_bench  # noqa: E402
from workflows_app.models import WorkflowDefinition, WorkflowInstance  # noqa: E402


def build(count: int) -> dict:
    call_command("migrate", verbosity=0, interactive=False)
    dataset.install_workflows()
    have = WorkflowInstance.objects.count()
    if have < count:
        dataset.generate_waiting(count - have)
    return {"instances": WorkflowInstance.objects.count()}


def info() -> dict:
    total = WorkflowInstance.objects.count()
    seed = WorkflowDefinition.objects.get(key="building-permit", version=1)
    middle = WorkflowInstance.objects.filter(definition=seed, pk__gte=total // 2).order_by("pk")
    instance = middle.first()
    return {
        "instances": total,
        "token": dataset.issue_token(),
        "uuid": str(instance.uuid),
        "pk": instance.pk,
        **sweep_bench.idle_sweep(),
    }


if __name__ == "__main__":
    answer = build(int(sys.argv[2])) if sys.argv[1] == "build" else info()
    print(json.dumps(answer))
