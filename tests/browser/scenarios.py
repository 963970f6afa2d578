"""Workflows and instances in known states, shared by the page tests and the browser tests."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from tests.factories import (
    committed,
    make_definition,
    make_seed_services,
    make_service,
    run_queued,
    start,
)
from workflows_app import runtime
from workflows_app.authoring import publishing
from workflows_app.models import (
    RunState,
    Service,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
    new_case_number,
)

PERMIT = {
    "id": "building-permit",
    "name": "Building permit",
    # Citizens apply through a portal: public, so it is on the board (public workflows only).
    "public": True,
    "steps": [
        {
            "id": "validate",
            "service": "validationSvc",
            "title": "Check of your documents",
            "description": "We check that your form is complete.",
        },
        {
            "id": "approve",
            "service": "approvalSvc",
            "title": "Review by a planning officer",
            "description": "An officer reads your plans and decides.",
            "timeout": "48h",
            "onTimeout": "escalate",
            "on": {"rejected": "reject"},
        },
        {
            "id": "notify",
            "service": "notificationSvc",
            "title": "Decision sent to you",
            "description": "We send you the decision.",
        },
    ],
}

# A distinctive payload: no part of it may ever appear on a public page.
PRIVATE_PAYLOAD = {"applicant": "Zebulon Quixfarnsworth", "address": "17 Xylophone Lane"}


PERMIT_FILES = [
    Path(settings.BASE_DIR) / "workflows" / name
    for name in ("building-permit.json", "services.yaml")
]


def seed_as_make_run(validation_url: str) -> WorkflowDefinition:
    """The seed loaded from its file as `make run` loads it (public), validation over HTTP."""
    report = publishing.load_files(PERMIT_FILES, public=["building-permit"])
    Service.objects.filter(name="validationSvc").update(url=validation_url)
    return report.published[0]


def permit_workflow(validation_kind: str = "python", **overrides: Any) -> WorkflowDefinition:
    """The building permit: automated check, a reviewer's decision, then a notification."""
    make_seed_services(validation_kind)
    return make_definition(PERMIT, **overrides)


def review_only_workflow() -> WorkflowDefinition:
    """One automated check and one review that ends the application (no worker needed after)."""
    make_seed_services()
    document = {**PERMIT, "id": "parking-permit", "name": "Parking permit"}
    document["steps"] = PERMIT["steps"][:2]
    return make_definition(document)


def broken_workflow() -> WorkflowDefinition:
    """A workflow whose only step fails at once (its built-in does not exist)."""
    make_service("brokenSvc", "python", callable="workflows_app.builtin.no_such_function")
    return make_definition({"id": "broken", "steps": [{"id": "check", "service": "brokenSvc"}]})


def at_review(definition: WorkflowDefinition | None = None, **payload: Any) -> WorkflowInstance:
    """An application whose documents were checked and that waits for a reviewer."""
    instance = start(definition or permit_workflow(), {**PRIVATE_PAYLOAD, **payload})
    run_queued(instance)
    instance.refresh_from_db()
    return instance


def review(
    instance: WorkflowInstance,
    result: str = "approved",
    reason: str = "",
    note: str = "",
    **data: Any,
) -> WorkflowInstance:
    """The reviewer decides; any automated step after that runs too."""
    run = StepRun.objects.get(instance=instance, state=RunState.WAITING)
    committed(
        runtime.complete_task,
        run_id=run.pk,
        result=result,
        data=data,
        actor="reviewer",
        reason=reason,
        note=note,
    )
    run_queued(instance)
    instance.refresh_from_db()
    return instance


def _case_number() -> str:
    """A unique case number for instances made in bulk (bulk_create skips the model's save)."""
    return new_case_number("BULK", timezone.now())


def finished_runs(definition: WorkflowDefinition, step_id: str, durations: list) -> None:
    """Ended applications whose `step_id` run took each of `durations` (bulk, for statistics)."""
    end = timezone.now() - timedelta(days=1)
    instances = WorkflowInstance.objects.bulk_create(
        WorkflowInstance(
            definition=definition, status="completed", ended_at=end, case_number=_case_number()
        )
        for _ in durations
    )
    StepRun.objects.bulk_create(
        StepRun(
            instance=instance,
            step_id=step_id,
            state=RunState.SUCCEEDED,
            result="ok",
            started_at=end - duration,
            ended_at=end,
        )
        for instance, duration in zip(instances, durations, strict=True)
    )


def waiting_runs(definition: WorkflowDefinition, step_id: str, since: list) -> None:
    """Running applications waiting at `step_id` since each of the moments in `since` (bulk)."""
    instances = WorkflowInstance.objects.bulk_create(
        WorkflowInstance(definition=definition, current_step=step_id, case_number=_case_number())
        for _ in since
    )
    runs = StepRun.objects.bulk_create(
        StepRun(instance=instance, step_id=step_id, state=RunState.WAITING, started_at=moment)
        for instance, moment in zip(instances, since, strict=True)
    )
    # auto_now_add ignores the value given at insert; the wait is measured from created_at.
    for run, moment in zip(runs, since, strict=True):
        run.created_at = moment
    StepRun.objects.bulk_update(runs, ["created_at"], batch_size=500)
