"""A case's whole record as one zip: record.json, summary.txt and the documents (docs/records.md).

Read only: nothing in the database changes. A purged case is exported too; its record says
when it was purged and what was removed (the data itself is gone).
"""

import io
import json
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone

from ..models import CaseDocument, Event, StepRun, WorkflowInstance

RECORD_FORMAT = "hms-case-record/1"


def case_record(instance: WorkflowInstance, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON record of one instance: version, payload, runs, decisions, events, documents."""
    definition = instance.pinned
    runs = list(StepRun.objects.filter(instance=instance).select_related(*_PEOPLE))
    documents = list(CaseDocument.objects.filter(instance=instance))
    children = WorkflowInstance.objects.filter(parent_run__instance=instance)
    return {
        "format": RECORD_FORMAT,
        "exportedAt": _iso(now or timezone.now()),
        "caseNumber": instance.case_number,
        "instanceId": str(instance.uuid),
        "workflow": {
            "id": definition.key,
            "version": definition.version,
            "name": definition.name,  # the stored text (a language map's first entry)
            "definition": definition.source,
        },
        "status": instance.status,
        "startedBy": instance.started_by,
        "createdAt": _iso(instance.created_at),
        "endedAt": _iso(instance.ended_at),
        "deadlineAt": _iso(instance.deadline_at),
        "parentCaseNumber": _parent(instance),
        "childCaseNumbers": list(children.values_list("case_number", flat=True)),
        "payload": instance.payload,
        "context": instance.context,
        "error": instance.error,
        "decision": instance.decision,
        "outcome": instance.outcome,
        "legalHold": instance.legal_hold,
        "purged": _purged(instance),
        # As the status API's `history`: finished steps, oldest first.
        "history": [
            {"step": r.step_id, "result": r.result, "time": _iso(r.ended_at), "by": r.completed_by}
            for r in sorted((r for r in runs if r.ended_at), key=lambda r: r.ended_at)
        ],
        "runs": [_run(run) for run in runs],
        "decisions": [_decision(run) for run in runs if run.is_for_a_person and run.ended_at],
        "events": [_event(e) for e in Event.objects.filter(instance=instance).order_by("pk")],
        "documents": [_document(d) for d in documents],
    }


_PEOPLE = ("assignee_group", "assignee_user", "claimed_by")


def write_case_zip(instance: WorkflowInstance, target) -> list[str]:
    """Write the zip to `target` (a path or a binary file); return the names it holds."""
    record = case_record(instance)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("record.json", json.dumps(record, indent=2, ensure_ascii=False))
        archive.writestr("summary.txt", summary_text(record))
        for document in CaseDocument.objects.filter(instance=instance):
            with document.open() as stored:
                archive.writestr(_document_file(document), stored.read())
        return archive.namelist()


def export_case(instance: WorkflowInstance, output: Path) -> Path:
    """Write the zip to `output`, readable by its owner only (it holds personal data)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        write_case_zip(instance, handle)
    return output


def case_zip_bytes(instance: WorkflowInstance) -> bytes:
    """The zip in memory (the admin's download)."""
    buffer = io.BytesIO()
    write_case_zip(instance, buffer)
    return buffer.getvalue()


def summary_text(record: dict[str, Any]) -> str:
    """A plain-text summary a person reads first: who, what, when, what was decided."""
    workflow = record["workflow"]
    outcome = record["outcome"] or {}
    lines = [
        f"Case {record['caseNumber']} ({record['instanceId']})",
        f"Workflow: {workflow['name'] or workflow['id']} ({workflow['id']} v{workflow['version']})",
        f"Status: {record['status']}",
        f"Started: {record['createdAt']} by {record['startedBy'] or 'anonymous'}",
        f"Ended: {record['endedAt'] or 'still running'}",
        f"Outcome: {outcome.get('result', '-')} at step {outcome.get('step', '-')}",
    ]
    lines += [f"  reason: {r}" for r in outcome.get("reasons") or []]
    if record["legalHold"]:
        lines.append("Legal hold: yes (kept past its retention)")
    if purged := record["purged"]:
        removed = purged["removed"]
        lines += [
            f"PURGED on {purged['at']}: personal data was removed after the retention period.",
            f"  removed: the payload (fields: {', '.join(removed.get('payloadFields', [])) or '-'}),"
            f" step outputs, reasons and notes, {removed.get('documents', 0)} document(s)"
            f" ({removed.get('documentBytes', 0)} bytes), free text of"
            f" {removed.get('eventsRedacted', 0)} event(s)",
            "  kept: case number, workflow, steps with results and times, the outcome's result.",
        ]
    lines += ["", "Steps:"]
    for run in record["runs"]:
        by = f" by {run['completedBy']}" if run["completedBy"] else ""
        lines.append(
            f"  {run['step']}: {run['state']} {run['result'] or ''}{by}"
            f" ({run['createdAt']} - {run['endedAt'] or 'open'})"
        )
        if run["reason"]:
            lines.append(f"    reason: {run['reason']}")
    lines += ["", f"Events: {len(record['events'])}", "", "Documents:"]
    lines += [f"  {d['file']} ({d['size']} bytes, {d['contentType']})" for d in record["documents"]]
    if not record["documents"]:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def _parent(instance: WorkflowInstance) -> str | None:
    return instance.parent_run.instance.case_number if instance.parent_run_id else None


def _purged(instance: WorkflowInstance) -> dict[str, Any] | None:
    if not instance.purged_at:
        return None
    return {"at": _iso(instance.purged_at), "removed": instance.purge_record or {}}


def _run(run: StepRun) -> dict[str, Any]:
    return {
        "taskId": str(run.pk),
        "step": run.step_id,
        "branch": run.lane or None,
        "state": run.state,
        "result": run.result,
        "attempts": run.attempts,
        "assigneeGroup": run.assignee_group.name if run.assignee_group else None,
        "assigneeUser": run.assignee_user.get_username() if run.assignee_user else None,
        "escalationLevel": run.escalation_level,
        "completedBy": run.completed_by,
        "reason": run.reason,
        "note": run.note,
        "output": run.output,
        "error": run.error,
        "createdAt": _iso(run.created_at),
        "startedAt": _iso(run.started_at),
        "dueAt": _iso(run.due_at),
        "endedAt": _iso(run.ended_at),
    }


def _decision(run: StepRun) -> dict[str, Any]:
    return {
        "taskId": str(run.pk),
        "step": run.step_id,
        "result": run.result,
        "by": run.completed_by,
        "reason": run.reason,
        "note": run.note,
        "time": _iso(run.ended_at),
        "onTime": run.due_at is None or run.ended_at <= run.due_at,
    }


def _event(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "step": event.step,
        "result": event.result,
        "actor": event.actor,
        "detail": event.detail,
        "time": _iso(event.created_at),
    }


def _document(document: CaseDocument) -> dict[str, Any]:
    return {
        "documentId": str(document.pk),
        "name": document.name,
        "size": document.size,
        "contentType": document.content_type,
        "sha256": document.sha256,
        "step": document.step,
        "uploadedBy": document.uploaded_by,
        "time": _iso(document.created_at),
        "file": _document_file(document),
    }


def _document_file(document: CaseDocument) -> str:
    """Its name inside the zip: unique (the id) and readable (the name as uploaded)."""
    return f"documents/{document.pk}-{document.name}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
