"""Plain functions that turn instances into the JSON of the status API (docs/api.md)."""

from datetime import datetime
from typing import Any

from django.utils import timezone

from ..engine import REFUSAL
from ..models import CaseDocument, StepRun, WorkflowInstance
from ..queries import outcomes, progress


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def instance_status(
    instance: WorkflowInstance, runs: list[StepRun] | None = None, *, private: bool = True
) -> dict[str, Any]:
    """The status document of one instance (its events: one query; its runs unless given;
    its documents, one more, unless `private` is false: anonymous readers never see them)."""
    runs = progress.runs_of(instance) if runs is None else runs
    events = progress.events_of(instance)
    definition = instance.pinned
    working = progress.working_runs(runs)  # as before: the open run of each open step
    children = progress.children_of(runs)
    document = {
        "instanceId": str(instance.uuid),
        "caseNumber": instance.case_number,
        "workflowId": definition.key,
        "version": definition.version,
        "status": instance.status,
        "currentStep": working[0].step_id if working else (instance.current_step or None),
        "currentSteps": [run.step_id for run in working],
        "createdAt": iso(instance.created_at),
        "endedAt": iso(instance.ended_at),
        "trackerUrl": instance.tracker_url,
        "history": [_history_entry(run) for run in progress.history(runs)],
        "steps": [_step(view, children) for view in progress.step_views(instance, runs)],
        "events": [_event(event) for event in events],
        "currentTask": _task(working[0]) if working else None,
        "currentTasks": [_task(run) for run in working],
        "outcome": instance.outcome,
    }
    if instance.parent_run_id:
        parent = progress.parent_of(instance)
        document["parentInstanceId"] = str(parent.uuid) if parent else None
    if instance.error:
        document["error"] = instance.error
    return document | request_fields(instance, private=private)


# --- Requests to the applicant: the deadline and the documents (docs/api.md) ---------------


def request_fields(instance: WorkflowInstance, *, private: bool) -> dict[str, Any]:
    """`deadline` (null without one) and, for token holders, `documents`."""
    state = progress.deadline_of(instance, now=timezone.now())
    fields: dict[str, Any] = {
        "deadline": state
        and {
            "dueAt": iso(state.due_at),
            "paused": state.paused,
            "remainingSeconds": state.remaining_seconds,
        }
    }
    if private:
        fields["documents"] = [document_json(d) for d in progress.documents_of(instance)]
    return fields


def document_json(document: CaseDocument) -> dict[str, Any]:
    """A document as the API shows it (the upload's answer, and `documents` in status)."""
    return {
        "documentId": str(document.pk),
        "name": document.name,
        "size": document.size,
        "contentType": document.content_type,
        "step": document.step or None,
        "time": iso(document.created_at),
    }


# What anonymous readers of a public instance never see in a history entry.
STAFF_ONLY = ("by", "error", "note")
# What an anonymous reader of a failed public instance is told: the real detail may quote a
# service's reply or name internal addresses (CONTRACT §3, R2).
GENERIC_ERROR = "the application stopped because of a technical problem on our side"


def without_people(document: dict[str, Any]) -> dict[str, Any]:
    """The document as anyone may read it: no staff names, no internal event details, no
    documents, no service replies or addresses (a failure's detail is generic)."""
    document = {key: value for key, value in document.items() if key != "documents"}
    if document.get("error"):
        step = document["error"].get("step")
        document = {**document, "error": {"step": step, "detail": GENERIC_ERROR}}
    return {
        **document,
        "history": [_public_entry(entry) for entry in document["history"]],
        "events": [{k: e[k] for k in ("type", "step", "time")} for e in document["events"]],
        "currentTask": document["currentTask"]
        and {k: v for k, v in document["currentTask"].items() if k != "assignee"},
        "currentTasks": [
            {k: v for k, v in task.items() if k != "assignee"} for task in document["currentTasks"]
        ],
    }


def _public_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A history entry without staff details; a service's reasons only for a refusal."""
    hidden = STAFF_ONLY if entry["result"] == REFUSAL else (*STAFF_ONLY, "reasons")
    return {k: v for k, v in entry.items() if k not in hidden}


def _history_entry(run: StepRun) -> dict[str, Any]:
    entry = {
        "step": run.step_id,
        **({"branch": run.lane} if run.lane else {}),
        "result": run.result,
        "time": iso(run.ended_at),
        "state": run.state,
        "startedAt": iso(run.started_at),
        "attempts": run.attempts,
        "taskId": str(run.pk),
    }
    if run.completed_by:
        entry["by"] = run.completed_by
    if reasons := outcomes.reasons_of(run.output):
        entry["reasons"] = reasons  # a service's data.reasons
    if run.reason:
        entry["reason"] = run.reason
    if run.note:
        entry["note"] = run.note
    if run.error:
        entry["error"] = run.error
    return entry


def _step(view: progress.StepView, children: dict) -> dict[str, Any]:
    # A step whose only run was cancelled reads `upcoming`: it shows no times either.
    ran = view.state != "upcoming"
    extra: dict[str, Any] = {"branch": view.branch} if view.branch else {}
    if view.kind == "workflow":
        child = children.get(view.run.pk) if view.run else None
        extra["childInstanceId"] = str(child.uuid) if child else None
    return {
        "id": view.id,
        "title": view.title,
        "state": view.state,
        "startedAt": iso(view.started_at) if ran else None,
        "endedAt": iso(view.ended_at) if ran else None,
        "dueAt": iso(view.due_at) if ran else None,
        "result": (view.result or None) if ran else None,
    } | extra


def _event(event) -> dict[str, Any]:
    return {
        **{_camel(key): value for key, value in event.detail.items()},
        "type": event.type,
        "step": event.step or None,
        "time": iso(event.created_at),
        **({"actor": event.actor} if event.actor else {}),
        **({"result": event.result} if event.result else {}),
    }


def _camel(name: str) -> str:
    """'retry_at' -> 'retryAt': event details are written in Python's style, shown in JSON's."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _task(run: StepRun) -> dict[str, Any]:
    return {
        "taskId": str(run.pk),
        "step": run.step_id,
        "state": run.state,
        "assignee": _assignee(run),
        "escalationLevel": run.escalation_level,
        "dueAt": iso(run.due_at),
        "attempts": run.attempts,
    }


def _assignee(run: StepRun) -> str | None:
    if run.assignee_user_id:
        return f"user:{run.assignee_user.username}"
    if run.assignee_group_id:
        return f"group:{run.assignee_group.name}"
    return None
