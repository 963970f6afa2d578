"""The history of an application: events, written with every change and never changed.

Append-only (docs/history.md): the ORM refuses to change or delete a saved event, and on
PostgreSQL a trigger refuses UPDATE and DELETE; runtime/redaction.py is the one narrow way
to blank free text past its retention.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .instances import StepRun, WorkflowInstance


class HistoryIsAppendOnly(Exception):
    """An event (history) row was to be changed or deleted: history is only ever added to.
    The one exception is redaction of free text (runtime/redaction.py, docs/history.md)."""


_APPEND_ONLY = (
    "events are the application's history and are never changed or deleted; "
    "redact free text with runtime.redaction.redact_events (docs/history.md)"
)


class EventQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes of history; `redacting()` is the one narrow way."""

    def update(self, **kwargs):
        raise HistoryIsAppendOnly(_APPEND_ONLY)

    def delete(self):
        raise HistoryIsAppendOnly(_APPEND_ONLY)

    def _redact(self, **kwargs) -> int:
        """Only for runtime.redaction: blank the named free-text fields (never `type`,
        `step`, `result`, times or links)."""
        if set(kwargs) - REDACTABLE_EVENT_FIELDS:
            raise HistoryIsAppendOnly(f"only {sorted(REDACTABLE_EVENT_FIELDS)} can be redacted")
        return super().update(**kwargs)


# Free text an event may hold about a person: what redaction may blank (docs/history.md).
REDACTABLE_EVENT_FIELDS = frozenset({"actor", "detail"})


class Event(models.Model):
    """Append-only history of an instance: every transition writes one in the same transaction.

    The ORM refuses to change or delete a saved event (save of an existing row, delete,
    queryset update/delete), and on PostgreSQL a trigger refuses UPDATE and DELETE
    (migration 0014); docs/history.md. Deleting a whole instance (and so its events by
    cascade) is refused by the trigger too; rows are kept for statistics.
    """

    class Type(models.TextChoices):
        STARTED = "started", _("Started")
        STEP_STARTED = "step_started", _("Step started")
        STEP_FINISHED = "step_finished", _("Step finished")
        STEP_FAILED = "step_failed", _("Step failed")
        STEP_SKIPPED = "step_skipped", _("Step skipped")
        RETRY_SCHEDULED = "retry_scheduled", _("Retry scheduled")
        REDELIVERED = "redelivered", _("Redelivered after a lost worker")
        WAITING = "waiting", _("Waiting for an answer")
        CHILD_STARTED = "child_started", _("Sub-workflow started")
        TIMED_OUT = "timed_out", _("Timed out")
        ESCALATED = "escalated", _("Escalated")
        REMINDED = "reminded", _("Reminder sent")
        REASSIGNED = "reassigned", _("Reassigned")
        CLAIMED = "claimed", _("Claimed")
        RELEASED = "released", _("Released")
        LATE_CALLBACK = "late_callback", _("Late or duplicate answer refused")
        REQUEST_SENT = "request_sent", _("Link to answer emailed to the applicant")
        DOCUMENT_ADDED = "document_added", _("Document added")
        CANCELLED = "cancelled", _("Cancelled")
        RETRIED = "retried", _("Retried by an operator")
        COMPLETED = "completed", _("Completed")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="events")
    run = models.ForeignKey(
        StepRun, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    type = models.CharField(max_length=30, choices=Type)
    step = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=64, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["instance", "id"], name="event_instance_idx"),
            models.Index(fields=["type", "created_at"], name="event_type_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.step}".strip()

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise HistoryIsAppendOnly(_APPEND_ONLY)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise HistoryIsAppendOnly(_APPEND_ONLY)
