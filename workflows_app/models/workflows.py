"""What is published and registered: workflow versions, services, drafts, the business calendar."""

import datetime
from functools import lru_cache

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import OnTimeout, ServiceKind


class Service(models.Model):
    """A registered service that steps name in `service`."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ServiceKind)
    url = models.URLField(blank=True, help_text=_("http: the address the step is POSTed to."))
    timeout_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("http: seconds to wait for an answer (default 10).")
    )
    concurrency = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=_("http: calls in flight at once per worker cluster (default: workers - 1)."),
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
    form = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "applicant: the fields the applicant is asked for, as in a services file, e.g. "
            '[{"name": "sitePlan", "label": "Site plan", "type": "file", "required": true}]'
        ),
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
    origin = models.CharField(
        max_length=300,
        blank=True,
        help_text=_("Where it was published from: a file, or a draft in the admin."),
    )
    case_prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="definition_key_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    @staticmethod
    @lru_cache(maxsize=2048)
    def cached(definition_id: int) -> "WorkflowDefinition":
        """The version with this id, cached per process: a published version never changes."""
        return WorkflowDefinition.objects.get(pk=definition_id)


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

    @property
    def weekday_numbers(self) -> frozenset[int]:
        """The working weekdays, Monday=0."""
        return frozenset(int(d) for d in self.weekdays.split(",") if d.strip())

    @property
    def holiday_dates(self) -> frozenset[datetime.date]:
        """The public holidays, one per non-empty line."""
        days = [line.strip() for line in self.holidays.splitlines() if line.strip()]
        return frozenset(datetime.date.fromisoformat(d) for d in days)


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
    deadline = models.CharField(
        max_length=50,
        blank=True,
        help_text=_(
            "Time allowed from start to decision, e.g. 40 working days or 30d; time spent "
            "waiting for the applicant does not count. Empty: none."
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
