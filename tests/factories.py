"""Plain factory functions for tests: make_definition, make_service, start, run_queued..."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tests.committing import as_committed
from workflows_app import definitions, runtime, tasks
from workflows_app.authoring import publishing
from workflows_app.models import (
    ApiToken,
    RunState,
    Service,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
)

SEED = {
    "id": "building-permit",
    "steps": [
        {"id": "validate", "service": "validationSvc"},
        {"id": "approve", "service": "approvalSvc", "timeout": "48h", "onTimeout": "escalate"},
        {"id": "notify", "service": "notificationSvc"},
    ],
}


def make_service(name: str, kind: str = "python", **fields: Any) -> Service:
    defaults = {
        "python": {"callable": "workflows_app.builtin.accept"},
        "human": {"group": "plan-reviewers", "backup_group": "backup-reviewers"},
        "http": {"url": "http://127.0.0.1:9/"},
        "applicant": {"form": [{"name": "answer", "type": "text", "required": True}]},
    }[kind]
    service, _ = Service.objects.update_or_create(
        name=name, defaults={"kind": kind, **defaults, **fields}
    )
    return service


def make_seed_services(validation_kind: str = "python") -> None:
    """The seed's three services: validation (python by default), approval, notification."""
    make_service("validationSvc", validation_kind)
    make_service("approvalSvc", "human")
    make_service("notificationSvc", "python", callable="workflows_app.builtin.notify_applicant")


def make_definition(document: dict[str, Any] | None = None, **overrides: Any) -> WorkflowDefinition:
    """Publish a definition document (the seed by default); its services must exist."""
    document = {**(document or SEED), **overrides}
    spec = definitions.parse_definition(document, source="<test>")
    definition, _ = publishing.publish(spec)
    return definition


def simple_workflow(key: str = "simple", steps: list[dict[str, Any]] | None = None, **extra: Any):
    """A definition of python steps that all answer `ok` (services created as needed)."""
    steps = steps or [{"id": "one", "service": "okSvc"}, {"id": "two", "service": "okSvc"}]
    for step in steps:
        if not Service.objects.filter(name=step["service"]).exists():
            make_service(step["service"])
    return make_definition({"id": key, "steps": steps, **extra})


def http_workflow(key: str = "held", **extra: Any) -> WorkflowDefinition:
    """One http step at an address nobody answers: an instance stays running, its step queued."""
    make_service("heldHttpSvc", "http")
    return make_definition({"id": key, "steps": [{"id": "one", "service": "heldHttpSvc"}], **extra})


def committed(action, *args, **kwargs):
    """Run `action` as if its transactions committed (the test's own transaction never does):
    its on_commit work runs, such as python steps run in the caller, as in production."""
    return as_committed(action, *args, **kwargs)


def start(
    definition: WorkflowDefinition, payload: dict | None = None, **kwargs
) -> WorkflowInstance:
    """Start an instance as the API does: its python steps then run in this caller."""
    instance, _ = committed(
        runtime.start_instance, definition=definition, payload=payload or {}, **kwargs
    )
    return instance


def run_queued(instance: WorkflowInstance) -> None:
    """Act as a worker: run every queued run of the instance until none is left."""
    for _ in range(20):
        run = StepRun.objects.filter(instance=instance, state=RunState.QUEUED).first()
        if run is None:
            return
        committed(tasks.run_step, str(run.pk), run.attempts)


def make_token(name: str = "portal", **fields: Any) -> str:
    _, raw = ApiToken.issue(name, **fields)
    return raw


def make_user(username: str, *groups: str, **fields: Any):
    user = get_user_model().objects.create_user(username=username, password="pw", **fields)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user
