"""Retention: removing the personal data of ended applications (docs/records.md).

`purge_expired` finds instances past their workflow's `retention` (or HMS_RETENTION), not on
legal hold (nor in a tree whose top is), and purges each in its own transaction: the payload,
the context, service replies, reasons and notes, the free text of its events and its
documents (rows, and the files once the transaction has committed). The case number, the
workflow version, the steps with their results, assignees and times, and the outcome's result
stay, so the reports still count the case. Purging twice does nothing the second time.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from ..definitions import InvalidDefinition, Retention, parse_retention
from ..models import (
    CaseDocument,
    Event,
    StepRun,
    WebhookDelivery,
    WorkflowDefinition,
    WorkflowInstance,
)
from ..models.documents import document_storage
from ..queries import catalog
from . import redaction

log = logging.getLogger(__name__)

REMOVED = "[removed]"
# Keys of an event's detail that may hold what people wrote or services answered.
FREE_TEXT_KEYS = frozenset({"reason", "reasons", "note", "error", "name", "comment", "data"})
DEFAULT_BATCH = 200


@dataclass(slots=True)
class PurgeReport:
    """What one purge did (or, with dry_run, would do)."""

    instances: int = 0
    documents: int = 0
    document_bytes: int = 0
    events_redacted: int = 0
    held: int = 0
    cases: list[str] = field(default_factory=list)


def default_retention() -> Retention | None:
    """HMS_RETENTION, for workflows that set no `retention`; None keeps data for ever."""
    text = getattr(settings, "HMS_RETENTION", "")
    return parse_retention(text) if text else None


def retention_of(definition: WorkflowDefinition) -> Retention | None:
    """The version's own `retention`, else the site's default (None: kept for ever)."""
    return catalog.spec_of(definition).retention or default_retention()


def expired(now: datetime) -> Q:
    """Instances (of any version) that ended before their version's retention cutoff."""
    by_cutoff: dict[datetime, list[int]] = {}
    for definition in WorkflowDefinition.objects.only("pk", "source"):
        try:
            retention = retention_of(definition)
        except InvalidDefinition:  # a version today's rules refuse: leave it to a person
            log.warning("retention of definition #%s cannot be read; skipped", definition.pk)
            continue
        if retention:
            by_cutoff.setdefault(retention.cutoff(now), []).append(definition.pk)
    found = Q(pk__in=[])
    for cutoff, ids in by_cutoff.items():
        found |= Q(definition_id__in=ids, ended_at__lte=cutoff)
    return found & Q(purged_at__isnull=True, ended_at__isnull=False)


def _held() -> Q:
    return Q(legal_hold=True) | Q(root__legal_hold=True)


def purge_expired(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH,
    limit: int | None = None,
    progress: Callable[[int, PurgeReport], None] | None = None,
) -> PurgeReport:
    """Purge every instance past its retention (at most `limit`), in batches; report what was
    (or would be) done."""
    now = now or timezone.now()
    due = WorkflowInstance.objects.filter(expired(now))
    total = PurgeReport(held=due.filter(_held()).count())
    batches = _batches(due.exclude(_held()), batch_size, limit)
    for number, batch in enumerate(batches, 1):
        done = _count(batch) if dry_run else _purge_batch(batch, now)
        _add(total, done)
        if progress:
            progress(number, done)
    return total


def _batches(due, size: int, limit: int | None) -> Iterator[list[int]]:
    """Ids of instances to purge, in id order, `size` at a time, `limit` in all."""
    last, left = 0, limit if limit is not None else 10_000_000  # bounded, whatever happens
    while left > 0:
        page = due.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
        ids = list(page[: min(size, left)])
        if not ids:
            return
        last, left = ids[-1], left - len(ids)
        yield ids


def _count(ids: list[int]) -> PurgeReport:
    docs = CaseDocument.objects.filter(instance_id__in=ids).aggregate(
        n=Count("pk"), size=Sum("size")
    )
    cases = (
        WorkflowInstance.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list("case_number", flat=True)
    )
    return PurgeReport(
        instances=len(ids),
        documents=docs["n"] or 0,
        document_bytes=docs["size"] or 0,
        cases=list(cases),
    )


def _purge_batch(ids: list[int], now: datetime) -> PurgeReport:
    report = PurgeReport()
    for pk in ids:
        done = purge_instance(instance_id=pk, now=now)
        if done:
            _add(report, done)
    return report


def _add(total: PurgeReport, part: PurgeReport) -> None:
    total.instances += part.instances
    total.documents += part.documents
    total.document_bytes += part.document_bytes
    total.events_redacted += part.events_redacted
    total.cases.extend(part.cases)


@transaction.atomic
def purge_instance(*, instance_id: int, now: datetime | None = None) -> PurgeReport | None:
    """Remove one ended instance's personal data; None when it is running, held or purged."""
    now = now or timezone.now()
    instance = WorkflowInstance.objects.select_for_update().get(pk=instance_id)
    held = instance.legal_hold or (instance.root_id and instance.root.legal_hold)
    if instance.purged_at or instance.ended_at is None or held:
        return None
    documents = list(CaseDocument.objects.filter(instance=instance))
    report = PurgeReport(
        instances=1,
        documents=len(documents),
        document_bytes=sum(d.size for d in documents),
        cases=[instance.case_number],
    )
    runs = StepRun.objects.filter(instance=instance)
    texts = runs.filter(~Q(reason="") | ~Q(note="") | ~Q(error="") | Q(output__isnull=False))
    cleared_runs = texts.update(output=None, error="", reason="", note="")
    CaseDocument.objects.filter(instance=instance).delete()
    report.events_redacted = redact_events(instance)
    _redact_webhook_bodies(instance)
    instance.purge_record = {
        "purgedAt": now.isoformat(),
        "payloadFields": sorted(instance.payload) if isinstance(instance.payload, dict) else [],
        "contextSteps": sorted(instance.context) if isinstance(instance.context, dict) else [],
        "documents": report.documents,
        "documentBytes": report.document_bytes,
        "runsCleared": cleared_runs,
        "eventsRedacted": report.events_redacted,
    }
    instance.payload, instance.context = {}, {}
    instance.error = _kept(instance.error, ("step",))
    instance.decision = _kept(instance.decision, ("result", "step", "time"))
    instance.outcome = _kept(instance.outcome, ("result", "step", "time"))
    instance.idempotency_key, instance.request_digest = None, ""
    instance.purged_at = now
    # What the tracker and status show changed: a new revision, so no poll answers 304.
    instance.revision = F("revision") + 1
    instance.save(
        update_fields=[
            *("payload", "context", "error", "decision", "outcome", "idempotency_key"),
            *("request_digest", "purged_at", "purge_record", "updated_at", "revision"),
        ]
    )
    paths = [d.path for d in documents]
    transaction.on_commit(partial(_delete_files, paths))
    return report


def _kept(document: dict | None, keys: tuple[str, ...]) -> dict | None:
    """Only the statistical keys of a JSON document (a decision, an outcome, an error)."""
    if not isinstance(document, dict):
        return document
    kept = {k: v for k, v in document.items() if k in keys}
    if "reasons" in document:
        kept["reasons"] = []
    return kept


def redact_events(instance: WorkflowInstance) -> int:
    """Remove the free text of an instance's events (reasons, notes, errors, file names).

    Event history is append-only (an ORM guard and, on PostgreSQL, a trigger): the change
    goes through the one escape hatch, runtime/redaction.py (docs/history.md), which may
    touch an event's `detail` and `actor` only; the rest of each row stays as it was.
    """
    details = {}
    for event in Event.objects.filter(instance=instance).only("pk", "detail"):
        detail = event.detail if isinstance(event.detail, dict) else {}
        if FREE_TEXT_KEYS & detail.keys():
            details[event.pk] = {
                k: (REMOVED if k in FREE_TEXT_KEYS else v) for k, v in detail.items()
            }
    return redaction.redact_details(details)


def _redact_webhook_bodies(instance: WorkflowInstance) -> None:
    """Status-webhook messages kept in the outbox carry the outcome: its reasons go too."""
    deliveries = WebhookDelivery.objects.filter(instance=instance, body__outcome__isnull=False)
    for delivery in deliveries.only("pk", "body"):
        outcome = _kept(delivery.body.get("outcome"), ("result", "step", "time"))
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            body={**delivery.body, "outcome": outcome}
        )


def _delete_files(paths: list[str]) -> None:
    """After the commit: the files of purged documents (a failure is logged, never raised)."""
    storage = document_storage()
    for path in paths:
        try:
            storage.delete(path)
        except OSError:
            log.exception("could not delete purged document %s", path)


def set_legal_hold(*, instance_ids: list[int], held: bool) -> list[str]:
    """Place (or lift) a legal hold on instances; return the case numbers changed."""
    with transaction.atomic():
        rows = WorkflowInstance.objects.select_for_update().filter(pk__in=instance_ids)
        changed = [i.case_number for i in rows if i.legal_hold != held]
        WorkflowInstance.objects.filter(pk__in=instance_ids).update(legal_hold=held)
    return changed
