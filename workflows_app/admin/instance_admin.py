"""Instances in the admin: filters and search that stay fast at scale, the timeline, and actions.

Every action calls the runtime (which writes the status and the history); nothing here
changes a row itself. The list never counts more than CappedPaginator.cap rows.
"""

import json
from functools import cached_property
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation, helpers
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .. import runtime
from ..authoring import diagram
from ..engine import TransitionNotAllowed
from ..models import (
    OPEN_RUN_STATES,
    Service,
    StepRun,
    WorkflowInstance,
    case_number_key,
)
from ..queries import catalog, progress
from ..runtime.permissions import actor_of
from .filters import (
    CurrentStepFilter,
    EscalatedFilter,
    OverdueFilter,
    VersionFilter,
    WorkflowFilter,
)
from .forms import ReasonForm, ReassignForm
from .readonly import ReadOnlyAdminMixin
from .records_admin import RecordsActionsMixin

BOTH = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
MAX_BATCH = 500  # instances one action acts on; more would hold the request too long


class CappedPaginator(Paginator):
    """Counts at most `cap` rows: a list of millions pages without counting them all."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by().values("pk")[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(RecordsActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "case",
        "workflow",
        "status",
        "current_step",
        "due",
        "escalated",
        "applicant",
        "created_at",
    )
    list_filter = (
        WorkflowFilter,
        VersionFilter,
        "status",
        CurrentStepFilter,
        OverdueFilter,
        EscalatedFilter,
    )
    search_fields = ("uuid",)  # get_search_results decides what a term means
    search_help_text = (
        "An instance id (UUID), a case number (BP-2026-7KQ3MX) or an applicant's name."
    )
    ordering = ("-pk",)  # creation order, on the primary key index
    sortable_by = ()
    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions = (
        "retry_failed",
        "cancel_with_reason",
        "reassign_task",
        *RecordsActionsMixin.records_actions,
    )
    fields = (
        "case",
        "uuid",
        "workflow",
        "status",
        "current_step",
        "error_text",
        "outcome_json",
        "started_by",
        "created_at",
        "updated_at",
        "ended_at",
        "legal_hold",
        "purged_at",
        "payload_json",
        "context_json",
    )
    readonly_fields = fields
    change_form_template = "admin/workflows_app/workflowinstance/change_form.html"

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.cancel_instance")

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.retry_instance")

    def has_reassign_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.reassign_task")

    def get_queryset(self, request):
        open_run = StepRun.objects.filter(instance=OuterRef("pk"), state__in=OPEN_RUN_STATES)
        return (
            super()
            .get_queryset(request)
            .select_related("definition")
            .annotate(
                open_due_at=Subquery(open_run.values("due_at")[:1]),
                open_escalation=Subquery(open_run.values("escalation_level")[:1]),
                open_exhausted=Subquery(open_run.values("escalation_exhausted")[:1]),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(uuid=UUID(term)), False
        except ValueError:
            pass
        if case := case_number_key(term):
            return queryset.filter(case_number=case), False
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return queryset.filter(payload__applicant__icontains=term), False

    # --- Columns and fields ---------------------------------------------------------------

    def action_checkbox(self, obj):
        # Django labels it with str(obj), which would look the definition up once more.
        attrs = {"class": "action-select", "aria-label": f"Select {self.case(obj)} for an action"}
        checkbox = forms.CheckboxInput(attrs, lambda value: False)
        return checkbox.render(helpers.ACTION_CHECKBOX_NAME, str(obj.pk))

    @admin.display(description="case")
    def case(self, obj):
        return obj.case_number

    @admin.display(description="workflow")
    def workflow(self, obj):
        url = reverse("admin:workflows_app_workflowdefinition_change", args=[obj.definition_id])
        return format_html(
            '<a href="{}">{} v{}</a>', url, obj.definition.key, obj.definition.version
        )

    @admin.display(description="due")
    def due(self, obj):
        due_at = getattr(obj, "open_due_at", None)
        if due_at is None:
            return "—"
        when = timezone.localtime(due_at).strftime("%Y-%m-%d %H:%M")
        return f"{when} (overdue)" if due_at < timezone.now() else when

    @admin.display(description="escalated")
    def escalated(self, obj):
        level = getattr(obj, "open_escalation", None)
        if getattr(obj, "open_exhausted", False):
            return f"level {level}: ladder ran out, with the supervisors"
        return f"level {level}" if level else "—"

    @admin.display(description="applicant")
    def applicant(self, obj):
        value = obj.payload.get("applicant") if isinstance(obj.payload, dict) else None
        return str(value) if value not in (None, "") else "—"

    @admin.display(description="error")
    def error_text(self, obj):
        return (obj.error or {}).get("detail", "—") if isinstance(obj.error, dict) else "—"

    @admin.display(description="outcome (the decision that ended it)")
    def outcome_json(self, obj):
        if obj.outcome is None:
            return "— (running)" if not obj.is_finished else "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.outcome, indent=2, ensure_ascii=False))

    @admin.display(description="payload")
    def payload_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False))

    @admin.display(description="context (outputs of steps)")
    def context_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.context, indent=2, ensure_ascii=False))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            runs = progress.runs_of(obj)
            kinds = dict(Service.objects.values_list("name", "kind"))
            open_steps = [run.step_id for run in runs if run.is_open]  # one per branch
            svg = diagram.render_svg(catalog.spec_of(obj), kinds=kinds, current=open_steps)
            context.update(
                timeline=progress.step_views(obj, runs),
                runs=runs,
                events=progress.events_of(obj),
                diagram=mark_safe(svg),  # escaped inside
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Actions ----------------------------------------------------------------------------

    @admin.action(description="Retry from the failed step", permissions=["retry"], location=BOTH)
    def retry_failed(self, request, queryset):
        actor = actor_of(request.user)
        self._each(
            request,
            queryset,
            "retried",
            lambda pk: runtime.retry_instance(instance_id=pk, actor=actor),
        )

    @admin.action(description="Cancel, with a reason…", permissions=["cancel"], location=BOTH)
    def cancel_with_reason(self, request, queryset):
        form = ReasonForm(request.POST if "_confirm" in request.POST else None)
        if not form.is_valid():
            return self._ask(request, queryset, form, "Cancel instances", "Cancel them")
        reason, actor = form.cleaned_data["reason"], actor_of(request.user)
        self._each(
            request,
            queryset,
            "cancelled",
            lambda pk: runtime.cancel_instance(instance_id=pk, reason=reason, actor=actor),
        )
        return None

    @admin.action(
        description="Reassign the current task, with a reason…",
        permissions=["reassign"],
        location=BOTH,
    )
    def reassign_task(self, request, queryset):
        form = ReassignForm(request.POST if "_confirm" in request.POST else None)
        if not form.is_valid():
            return self._ask(request, queryset, form, "Reassign tasks", "Reassign")
        data = form.cleaned_data
        self._each(
            request,
            queryset,
            f"reassigned to {data['to']}",
            lambda pk: _reassign(pk, to=data["to"], reason=data["reason"], user=request.user),
        )
        return None

    def _each(self, request, queryset, done: str, act) -> None:
        """Apply `act` to each selected instance; report what was done and what was refused."""
        ok, refused = [], []
        for pk in queryset.values_list("pk", flat=True)[:MAX_BATCH]:
            try:
                ok.append(str(act(pk)))
            except (TransitionNotAllowed, runtime.NotAllowed, LookupError, ValueError) as exc:
                refused.append(str(exc))
        if ok:
            self.message_user(request, f"{len(ok)} {done}: {', '.join(ok)}", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, f"Refused: {reason}", messages.ERROR)

    def _ask(self, request, queryset, form, title: str, button: str):
        """The intermediate page: the reason (and whom), re-posting the action's own fields."""
        skip = {"csrfmiddlewaretoken", "_confirm", *form.fields}
        carried = [(k, v) for k, values in request.POST.lists() if k not in skip for v in values]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": title,
            "button": button,
            "carried": carried,
            "instances": list(queryset[:MAX_BATCH]),
            "count": len(queryset[:MAX_BATCH]),
        }
        return TemplateResponse(
            request, "admin/workflows_app/workflowinstance/action_form.html", context
        )


def _reassign(instance_id: int, *, to: str, reason: str, user) -> WorkflowInstance:
    """Hand the instance's open task to `to` (runtime.reassign_task records the event)."""
    run = StepRun.objects.filter(instance_id=instance_id, state__in=OPEN_RUN_STATES).first()
    instance = WorkflowInstance.objects.get(pk=instance_id)
    if run is None:
        raise TransitionNotAllowed(f"{instance} has no open task")
    runtime.reassign_task(run_id=run.pk, to=to, reason=reason, actor=user)
    return instance
