"""Applications and their history: instances, step runs (tasks), events.

The database enforces the invariants (valid statuses, one open step run per lane, one child
per workflow step run) so that no code path, however buggy, can store an impossible state.
"""

import re
import secrets
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import OPEN_RUN_STATES, RunState, Status
from .workflows import WorkflowDefinition

# Crockford's base32: digits and letters without I, L, O and U, so a number read out on the
# phone or copied by hand survives (an O typed for a 0, an l for a 1 is understood).
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 6  # 32**6: about a billion codes per workflow and year
_TYPED_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_CASE_NUMBER = re.compile(r"(?P<prefix>[A-Z0-9]{1,8})-(?P<year>\d{4})-(?P<code>[0-9A-Z]{1,12})")


def random_code() -> str:
    """Six random Crockford characters with at least one letter, so that a new number never
    looks like one of the sequential numbers of before (BP-2026-000042)."""
    while True:
        code = "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LENGTH))
        if not code.isdigit():
            return code


def new_case_number(prefix: str, now) -> str:
    """BP-2026-7KQ3MX: the workflow's prefix, the year, a random code (not derived from any
    other number, so case numbers cannot be guessed from each other)."""
    return f"{prefix}-{timezone.localtime(now).year}-{random_code()}"


def case_number_key(text: str) -> str | None:
    """The stored form of a typed case number: upper case, Crockford's look-alikes read as
    digits, an old sequential number zero-padded ('bp-2025-42' -> 'BP-2025-000042'); None
    when it is no case number at all."""
    match = _CASE_NUMBER.fullmatch(text.strip().upper())
    if not match:
        return None
    code = match["code"].translate(_TYPED_AS)
    if code.isdigit():
        code = f"{int(code):06d}"
    return f"{match['prefix']}-{match['year']}-{code}"


class WorkflowInstance(models.Model):
    """One application going through one version of a workflow."""

    # An integer key keeps joins and indexes small and numbers cases without a counter row;
    # the public id (API, tracker links) is the UUID.
    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # BP-2026-7KQ3MX, drawn at start (unique: a collision draws again); instances started
    # before random codes keep their sequential BP-2026-000042 (migration 0011).
    case_number = models.CharField(max_length=32, unique=True, editable=False)
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.PROTECT)
    status = models.CharField(max_length=20, choices=Status, default=Status.RUNNING)
    current_step = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    context = models.JSONField(default=dict, help_text=_("Outputs of finished steps, by step id."))
    error = models.JSONField(null=True, blank=True)
    # {"result", "step", "reasons", "time"} of the latest decision so far (a person's answer
    # or a refusal; what `notify` tells the applicant), and of what ended it (R2 `outcome`:
    # NULL while running). Written with the move that records them: no query to look back.
    decision = models.JSONField(null=True, blank=True)
    outcome = models.JSONField(null=True, blank=True)
    # NULL, not "", when absent: the unique constraint must allow many instances without a key.
    idempotency_key = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001
    request_digest = models.CharField(max_length=64, blank=True)
    started_by = models.CharField(max_length=150, blank=True)
    # The applicant's language (a code of settings.LANGUAGES; "" for the site's default): the
    # language of their emails (docs/pages.md, Languages).
    language = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every change of the instance or of its runs, tasks, branches, events and
    # documents, in the transaction that makes it (runtime/guards.py): the status API's and
    # the tracker's ETag, so an unchanged poll answers 304 from this one column (docs/api.md).
    revision = models.PositiveBigIntegerField(default=1, db_default=1, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The statutory deadline (the workflow's `deadline`, docs/definitions.md): when the decision
    # is due, moved later by the time spent waiting for the applicant. Decided on time:
    # ended_at <= deadline_at.
    deadline_at = models.DateTimeField(null=True, blank=True)
    # Set while an `applicant` step waits: the deadline does not run from then.
    awaiting_applicant_since = models.DateTimeField(null=True, blank=True)
    # A child instance (a `workflow` step's sub-workflow): the parent's run that started it,
    # and the top of its tree, whose row every change in the tree locks first
    # (docs/parallel.md). Both empty for an instance nobody started.
    parent_run = models.OneToOneField(
        "StepRun", null=True, blank=True, on_delete=models.PROTECT, related_name="child"
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Records (docs/records.md): a legal hold stops purge_expired; purged_at says when the
    # personal data was removed, purge_record what was removed (counts, never the data).
    legal_hold = models.BooleanField(
        default=False, db_default=False, help_text=_("Kept whole past its retention.")
    )
    purged_at = models.DateTimeField(null=True, blank=True)
    purge_record = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="instance_status_valid"
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"], name="instance_idempotency_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(status=Status.RUNNING) | Q(current_step=""),
                name="instance_ended_has_no_current_step",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="instance_status_idx"),
            models.Index(fields=["definition", "status"], name="instance_definition_status_idx"),
            # The admin's instance list filters, newest first.
            models.Index(fields=["status", "-id"], name="instance_status_id_idx"),
            models.Index(
                fields=["current_step", "-id"],
                condition=Q(status="running"),
                name="instance_running_step_idx",
            ),
            # purge_expired (ended before a cutoff) and the reports (ended on a day).
            models.Index(fields=["ended_at"], name="instance_ended_idx"),
            # The backlog report: running instances by workflow version and age, index only.
            models.Index(
                fields=["definition", "created_at"],
                condition=Q(status="running"),
                name="instance_running_age_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.case_number

    def save(self, *args, **kwargs) -> None:
        # The runtime draws the number (and draws again on a collision); this covers any
        # other way an instance is made, so none is ever saved without one.
        if not self.case_number:
            self.case_number = new_case_number(self.pinned.case_prefix, timezone.now())
        super().save(*args, **kwargs)

    @property
    def pinned(self) -> WorkflowDefinition:
        """The definition version, from the per-process cache (versions never change)."""
        return WorkflowDefinition.cached(self.definition_id)

    @property
    def is_finished(self) -> bool:
        return self.status != Status.RUNNING

    @property
    def root_id_or_own(self) -> int:
        """The id of the top of this instance's tree (its own for an instance nobody started)."""
        return self.root_id or self.pk

    @property
    def tracker_url(self) -> str:
        return f"/track/{self.uuid}/"


class StepRun(models.Model):
    """One run of one step of an instance (a loop back or an operator retry makes a new one).

    Its id is the task id of the API and the Idempotency-Key of every HTTP request it makes.
    `wake_at` is the one timer column: when a queued run may be dispatched (backoff), when a
    running run's lease expires, or when a waiting run's deadline or next reminder falls due.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(WorkflowInstance, on_delete=models.CASCADE, related_name="runs")
    step_id = models.CharField(max_length=64)
    # "" for the workflow's own steps, else the id of the branch the step belongs to.
    lane = models.CharField(max_length=64, blank=True, default="", db_default="")
    state = models.CharField(max_length=20, choices=RunState, default=RunState.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Dispatches made so far."))
    result = models.CharField(max_length=64, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # Human tasks: who may act, and the escalation level reached.
    assignee_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    escalation_exhausted = models.BooleanField(
        default=False, help_text=_("The ladder ran out: the supervisors have the task.")
    )
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    completed_by = models.CharField(max_length=150, blank=True)
    # A person's decision: `reason` is shown to the applicant, `note` only to staff.
    reason = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=RunState.values), name="steprun_state_valid"
            ),
            models.UniqueConstraint(
                fields=["instance", "lane"],
                condition=Q(state__in=OPEN_RUN_STATES),
                name="one_open_run_per_lane",
            ),
        ]
        indexes = [
            # Not partial: closed runs have no wake_at, and SQLite cannot match a partial
            # index's condition against the bound parameters of the timer's query.
            models.Index(fields=["wake_at"], name="steprun_wake_idx"),
            models.Index(
                fields=["due_at"],
                condition=Q(state__in=OPEN_RUN_STATES),
                name="steprun_open_due_idx",
            ),
            models.Index(fields=["instance", "created_at"], name="steprun_instance_idx"),
            models.Index(fields=["step_id", "state"], name="steprun_step_state_idx"),
            models.Index(
                fields=["instance"],
                condition=Q(state__in=OPEN_RUN_STATES, escalation_level__gt=0),
                name="steprun_open_escalated_idx",
            ),
            # "How long such steps usually take": the latest finished runs of one step.
            models.Index(
                fields=["step_id", "-ended_at"],
                condition=Q(state="succeeded"),
                name="steprun_done_step_end_idx",
            ),
            models.Index(
                fields=["assignee_group", "state"],
                condition=Q(state="waiting"),
                name="steprun_waiting_group_idx",
            ),
            models.Index(
                fields=["assignee_user", "state"],
                condition=Q(state="waiting"),
                name="steprun_waiting_user_idx",
            ),
            # The reports' daily rollups: runs that ended on a day.
            models.Index(fields=["ended_at"], name="steprun_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_RUN_STATES

    @property
    def is_for_a_person(self) -> bool:
        """A human step's run: it has (or had) a group or a person assigned."""
        return bool(self.assignee_group_id or self.assignee_user_id)

    @property
    def is_task(self) -> bool:
        """An open task: waiting for a person (not for a service's callback)."""
        return self.state == RunState.WAITING and self.is_for_a_person


class InstanceOperation(WorkflowInstance):
    """No table: carries the supervisors' permissions to act on running instances."""

    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [
            ("cancel_instance", _("Can cancel an instance")),
            ("retry_instance", _("Can retry a failed instance")),
            ("reassign_task", _("Can reassign a task")),
            # Records and reports (docs/records.md, docs/reports.md).
            ("hold_instance", _("Can place or lift a legal hold")),
            ("export_case", _("Can export a case's whole record")),
            ("view_reports", _("Can see the supervisors' reports")),
        ]
