"""Tables of the workflow engine: definitions, services, instances, step runs, events, tokens.

Status values are the lowercase words the API shows. The database enforces the invariants
(valid statuses, one open step run per instance, unique key+version) so that no code path,
however buggy, can store an impossible state.
"""

import datetime
import hashlib
import re
import secrets
import uuid
from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import working_time


class Status(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class RunState(models.TextChoices):
    QUEUED = "queued", _("Queued")  # ready to dispatch at wake_at
    RUNNING = "running", _("Running")  # claimed by a worker until wake_at (the lease)
    WAITING = "waiting", _("Waiting")  # for a person or a callback
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")
    CANCELLED = "cancelled", _("Cancelled")


OPEN_RUN_STATES = (RunState.QUEUED, RunState.RUNNING, RunState.WAITING)


class ServiceKind(models.TextChoices):
    HTTP = "http", _("HTTP call")
    HUMAN = "human", _("Task for a person")
    PYTHON = "python", _("Built-in (Python)")


class Service(models.Model):
    """A registered service that steps name in `service`."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ServiceKind)
    url = models.URLField(blank=True, help_text=_("http: the address the step is POSTed to."))
    timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("http: seconds to wait for an answer (default 10).")
    )
    secret = models.CharField(
        max_length=200, blank=True, help_text=_("http: Standard Webhooks signing secret.")
    )
    secret_env = models.CharField(
        max_length=100, blank=True, help_text=_("http: environment variable holding the secret.")
    )
    group = models.CharField(max_length=150, blank=True, help_text=_("human: who gets the task."))
    backup_group = models.CharField(
        max_length=150, blank=True, help_text=_("human: who gets it when it is escalated.")
    )
    callable = models.CharField(
        max_length=200, blank=True, help_text=_("python: dotted path of the function.")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ServiceKind.values), name="service_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class WorkflowDefinition(models.Model):
    """One published, immutable version of a workflow; instances pin the version they start on."""

    key = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200, blank=True)
    public = models.BooleanField(default=False)
    source = models.JSONField(help_text=_("The definition document as loaded."))
    digest = models.CharField(max_length=64)
    case_prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="definition_key_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    @cached_property
    def spec(self):
        """The parsed, compiled spec of this version (cached per process: versions never change)."""
        from .specs import spec_for

        return spec_for(self.pk, self.source)


class ApiToken(models.Model):
    """A bearer token for the API. Only its SHA-256 is stored; the token is shown once."""

    class Scope(models.TextChoices):
        START = "start", _("Start instances and read their status")
        TASKS = "tasks", _("Complete tasks (callbacks, portals)")
        OPERATE = "operate", _("Cancel and retry instances")

    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text=_("Empty means every scope."))
    workflows = models.JSONField(
        default=list, blank=True, help_text=_("Workflow keys this token may use; empty means all.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, name: str, **fields) -> tuple["ApiToken", str]:
        """Create a token; return it with the raw secret, which is never stored."""
        raw = "hms_" + secrets.token_urlsafe(32)
        return cls.objects.create(name=name, key_hash=cls.hash(raw), **fields), raw

    def allows(self, scope: str, workflow_key: str | None = None) -> bool:
        if self.scopes and scope not in self.scopes:
            return False
        return not (self.workflows and workflow_key and workflow_key not in self.workflows)


def format_case_number(prefix: str, created_at, number: int) -> str:
    year = timezone.localtime(created_at).year if created_at else timezone.localdate().year
    return f"{prefix}-{year}-{number:06d}"


def parse_case_number(text: str) -> tuple[str, int, int] | None:
    """('BP', 2026, 42) from 'BP-2026-000042' (any case, surrounding spaces ignored)."""
    match = _CASE_NUMBER.fullmatch(text.strip().upper())
    if not match:
        return None
    return match["prefix"], int(match["year"]), int(match["number"])


_CASE_NUMBER = re.compile(r"(?P<prefix>[A-Z0-9]{1,8})-(?P<year>\d{4})-(?P<number>\d{1,12})")


class WorkflowInstance(models.Model):
    """One application going through one version of a workflow."""

    # An integer key keeps joins and indexes small and numbers cases without a counter row;
    # the public id (API, tracker links) is the UUID.
    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.PROTECT)
    status = models.CharField(max_length=20, choices=Status, default=Status.RUNNING)
    current_step = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    context = models.JSONField(default=dict, help_text=_("Outputs of finished steps, by step id."))
    error = models.JSONField(null=True, blank=True)
    # NULL, not "", when absent: the unique constraint must allow many instances without a key.
    idempotency_key = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001
    request_digest = models.CharField(max_length=64, blank=True)
    started_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

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
        ]

    def __str__(self) -> str:
        return self.case_number

    @property
    def case_number(self) -> str:
        """BP-2026-000042: the workflow's prefix, the year it started, the instance number."""
        return format_case_number(self.pinned.case_prefix, self.created_at, self.pk)

    @property
    def pinned(self) -> "WorkflowDefinition":
        """The definition version, from the per-process cache (versions never change)."""
        from .specs import get_definition

        return get_definition(self.definition_id)

    @property
    def is_finished(self) -> bool:
        return self.status != Status.RUNNING

    @property
    def spec(self):
        return self.pinned.spec

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
    state = models.CharField(max_length=20, choices=RunState, default=RunState.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Dispatches made so far."))
    result = models.CharField(max_length=64, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    wake_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    # Human tasks (issue 4 builds on these): who may act, and the escalation level reached.
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
    comment = models.TextField(blank=True)
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
                fields=["instance"],
                condition=Q(state__in=OPEN_RUN_STATES),
                name="one_open_step_run_per_instance",
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
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_RUN_STATES


class Event(models.Model):
    """Append-only history of an instance: every transition writes one in the same transaction."""

    class Type(models.TextChoices):
        STARTED = "started", _("Started")
        STEP_STARTED = "step_started", _("Step started")
        STEP_FINISHED = "step_finished", _("Step finished")
        STEP_FAILED = "step_failed", _("Step failed")
        STEP_SKIPPED = "step_skipped", _("Step skipped")
        RETRY_SCHEDULED = "retry_scheduled", _("Retry scheduled")
        REDELIVERED = "redelivered", _("Redelivered after a lost worker")
        WAITING = "waiting", _("Waiting for an answer")
        TIMED_OUT = "timed_out", _("Timed out")
        ESCALATED = "escalated", _("Escalated")
        REMINDED = "reminded", _("Reminder sent")
        REASSIGNED = "reassigned", _("Reassigned")
        CLAIMED = "claimed", _("Claimed")
        RELEASED = "released", _("Released")
        LATE_CALLBACK = "late_callback", _("Late or duplicate answer refused")
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

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["instance", "id"], name="event_instance_idx"),
            models.Index(fields=["type", "created_at"], name="event_type_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.step}".strip()


class Heartbeat(models.Model):
    """The last tick of a named periodic job, for health checks."""

    name = models.CharField(max_length=50, primary_key=True)
    last_tick = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_tick:%Y-%m-%d %H:%M:%S}"


class BusinessCalendar(models.Model):
    """Working hours, weekdays and public holidays that working-time time-outs count on."""

    name = models.CharField(max_length=100, default="Office hours")
    time_zone = models.CharField(max_length=64, default="Europe/Brussels")
    work_start = models.TimeField(default=datetime.time(9, 0))
    work_end = models.TimeField(default=datetime.time(17, 0))
    weekdays = models.CharField(
        max_length=20,
        default="0,1,2,3,4",
        help_text=_("Working weekdays, Monday=0, comma-separated."),
    )
    holidays = models.TextField(
        blank=True, help_text=_("Public holidays, one date (YYYY-MM-DD) per line.")
    )

    class Meta:
        verbose_name = _("business calendar")

    def __str__(self) -> str:
        return self.name

    def to_calendar(self) -> working_time.Calendar:
        """The pure calendar the working-time arithmetic uses."""
        days = [line.strip() for line in self.holidays.splitlines() if line.strip()]
        return working_time.Calendar(
            tz=self.time_zone,
            work_start=self.work_start,
            work_end=self.work_end,
            weekdays=frozenset(int(d) for d in self.weekdays.split(",") if d.strip()),
            holidays=frozenset(datetime.date.fromisoformat(d) for d in days),
        )

    @classmethod
    def current(cls) -> working_time.Calendar:
        """The first calendar in the database, or office hours in the site's time zone."""
        row = cls.objects.order_by("pk").first()
        return row.to_calendar() if row else working_time.Calendar(tz=settings.TIME_ZONE)


class SeenWebhook(models.Model):
    """webhook-ids of signed callbacks already accepted, so a replay is refused."""

    message_id = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.message_id


class Delegation(models.Model):
    """Out of office: new tasks for `user` go to `deputy` between the two dates (inclusive)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    deputy = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="delegation_dates_ordered"
            ),
            models.CheckConstraint(condition=~Q(user=F("deputy")), name="delegation_not_to_self"),
        ]
        indexes = [
            models.Index(fields=["user", "starts_on", "ends_on"], name="delegation_user_idx")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.deputy} ({self.starts_on}–{self.ends_on})"


# --- Authoring in the admin (issue 6): drafts, and the operators' permissions -------------


class WorkflowDraft(models.Model):
    """A workflow being written in the admin; publishing it freezes a WorkflowDefinition."""

    key = models.SlugField(
        _("workflow id"),
        max_length=64,
        unique=True,
        help_text=_(
            "The name programs use to start this workflow (workflowId), e.g. building-permit. "
            "Lowercase letters, digits and hyphens. One draft per workflow."
        ),
    )
    name = models.CharField(
        max_length=200, blank=True, help_text=_("A readable name, e.g. Building permit.")
    )
    description = models.TextField(
        blank=True, help_text=_("Plain language: what the citizen applies for.")
    )
    public = models.BooleanField(
        default=False,
        help_text=_("Anyone may start this workflow and follow it without a token (portals)."),
    )
    input_schema = models.JSONField(
        _("input"),
        null=True,
        blank=True,
        help_text=_(
            "Optional JSON Schema the application (payload) must satisfy, e.g. "
            '{"type": "object", "required": ["applicant"]}. Leave empty to accept any.'
        ),
    )
    based_on = models.ForeignKey(
        WorkflowDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The published version this draft started from or last published."),
    )
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        permissions = [("publish_workflowdraft", _("Can publish a draft as a new version"))]

    def __str__(self) -> str:
        return self.name or self.key


class OnTimeout(models.TextChoices):
    ESCALATE = "escalate", _("escalate: hand the task to the next backup")
    FAIL = "fail", _("fail: the application fails")
    SKIP = "skip", _("skip: go on with result 'timeout'")
    RETRY = "retry", _("retry: try again (a person is reminded)")


class DraftStep(models.Model):
    """One step of a draft, one row per step; `position` orders them."""

    draft = models.ForeignKey(WorkflowDraft, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Steps run in this order, lowest first. Left empty: after the others."),
    )
    step_id = models.CharField(
        _("id"),
        max_length=64,
        help_text=_("A short name for the step, e.g. approve (letters, digits, - and _)."),
    )
    service = models.CharField(max_length=100, help_text=_("Who or what does this step."))
    title = models.CharField(
        max_length=200, blank=True, help_text=_("Shown to citizens, e.g. We check your plans.")
    )
    description = models.TextField(blank=True, help_text=_("Shown to citizens, plain language."))
    timeout = models.CharField(
        max_length=50,
        blank=True,
        help_text=_("Time allowed: 90s, 30m, 48h, 2d, PT48H, 2 working days, 16 working hours."),
    )
    on_timeout = models.CharField(
        _("on timeout"),
        max_length=10,
        blank=True,
        choices=OnTimeout,
        help_text=_("What happens when the time runs out. Empty: escalate tasks, fail the rest."),
    )
    escalate_to = models.TextField(
        _("escalate to"),
        blank=True,
        help_text=_("Backups, one per line, in order: group:NAME or user:USERNAME."),
    )
    assignee = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Who gets the task instead of the service's group: group:NAME or user:NAME."),
    )
    retry_max = models.PositiveSmallIntegerField(
        _("retries"),
        null=True,
        blank=True,
        help_text=_("Automated steps: how many times to try again after a failure (default 3)."),
    )
    retry_backoff = models.CharField(
        _("retry delay"),
        max_length=50,
        blank=True,
        help_text=_("Wait before the first retry, doubled each time, e.g. 10s (default 10s)."),
    )
    next = models.TextField(
        blank=True,
        help_text=_(
            "Where to go next. Empty: the following step. One step id (or end, reject, fail), "
            "or one line per condition: if payload.docs == false goto request-docs"
        ),
    )
    on = models.TextField(
        blank=True,
        help_text=_("Where a result leads, one per line: rejected: reject"),
    )

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(on_timeout__in=["", *OnTimeout.values]),
                name="draftstep_on_timeout_valid",
            )
        ]

    def __str__(self) -> str:
        return self.step_id


class InstanceOperation(WorkflowInstance):
    """No table: carries the supervisors' permissions to act on running instances."""

    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [
            ("cancel_instance", _("Can cancel an instance")),
            ("retry_instance", _("Can retry a failed instance")),
            ("reassign_task", _("Can reassign a task")),
        ]
