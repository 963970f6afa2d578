"""The baselines our figures are divided by: a django-q2 task that updates one row, and a
view that reads one row. Both go through the same broker, workers and middleware as ours."""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from workflows_app.models import Heartbeat, WorkflowInstance

ROW_PREFIX = "bench-row-"


def enqueue_touch(name: str) -> None:
    """Send one baseline task as a competent django-q2 user would, and as we send ours
    (runtime/queue.py): `save=False`, so no result row is written and the monitor never
    prunes results for it (django-q2's `save_limit` pruning held the default to 25-47
    tasks/s on SQLite; docs/BENCHMARKS.md)."""
    from django_q.tasks import async_task

    async_task("bench.baseline.touch_row", name, save=False)


def touch_row(name: str) -> int:
    """django-q2 job: update one row (a Heartbeat named `name`) through the ORM."""
    return Heartbeat.objects.filter(pk=name).update(last_tick=timezone.now())


def one_row(request: HttpRequest, pk: int) -> JsonResponse:
    """Read one instance row by primary key and answer it as JSON."""
    row = WorkflowInstance.objects.filter(pk=pk).values("uuid", "status").first()
    if row is None:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"id": str(row["uuid"]), "status": row["status"]})
