"""List filters of the instances list; each one filters on an indexed column.

The choices come from the (few) published definitions, read once per request, never from
the (many) instances.
"""

from django.contrib import admin
from django.utils import timezone

from ..models import OPEN_RUN_STATES, Event, Status, StepRun, WorkflowDefinition


def _definitions(request) -> list[tuple[int, str, int, list[str]]]:
    """(id, key, version, step ids) of every definition, read once per request."""
    cached = getattr(request, "_hms_definitions", None)
    if cached is None:
        rows = WorkflowDefinition.objects.order_by("key", "-version").values_list(
            "pk", "key", "version", "source"
        )
        cached = [
            (pk, key, version, [s.get("id") for s in source.get("steps", [])])
            for pk, key, version, source in rows
        ]
        request._hms_definitions = cached
    return cached


class WorkflowFilter(admin.SimpleListFilter):
    title = "workflow"
    parameter_name = "workflow"

    def lookups(self, request, model_admin):
        return [(key, key) for key in dict.fromkeys(key for _, key, _, _ in _definitions(request))]

    def queryset(self, request, queryset):
        return queryset.filter(definition__key=self.value()) if self.value() else queryset


class VersionFilter(admin.SimpleListFilter):
    title = "version"
    parameter_name = "version"

    def lookups(self, request, model_admin):
        key = request.GET.get(WorkflowFilter.parameter_name)
        return [
            (str(pk), f"{k} v{version}")
            for pk, k, version, _ in _definitions(request)
            if not key or k == key
        ]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(definition_id=int(value)) if value and value.isdigit() else queryset


class CurrentStepFilter(admin.SimpleListFilter):
    title = "current step"
    parameter_name = "step"

    def lookups(self, request, model_admin):
        key = request.GET.get(WorkflowFilter.parameter_name)
        steps = [s for _, k, _, ids in _definitions(request) if not key or k == key for s in ids]
        return [(step, step) for step in dict.fromkeys(s for s in steps if s)]

    def queryset(self, request, queryset):
        # Only running instances have a current step; saying so lets a partial index serve.
        if not self.value():
            return queryset
        return queryset.filter(status=Status.RUNNING, current_step=self.value())


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue (an open step past its due time)"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        late = StepRun.objects.filter(state__in=OPEN_RUN_STATES, due_at__lt=timezone.now())
        ids = late.values("instance_id")
        return (
            queryset.filter(pk__in=ids) if self.value() == "yes" else queryset.exclude(pk__in=ids)
        )


class EscalatedFilter(admin.SimpleListFilter):
    title = "escalated"
    parameter_name = "escalated"

    def lookups(self, request, model_admin):
        return [
            ("now", "Its open task is escalated"),
            ("supervisors", "Ladder ran out: with the supervisors"),
            ("ever", "Escalated at some time"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "now":
            runs = StepRun.objects.filter(state__in=OPEN_RUN_STATES, escalation_level__gt=0)
            return queryset.filter(pk__in=runs.values("instance_id"))
        if self.value() == "supervisors":
            runs = StepRun.objects.filter(state__in=OPEN_RUN_STATES, escalation_exhausted=True)
            return queryset.filter(pk__in=runs.values("instance_id"))
        if self.value() == "ever":
            return queryset.filter(
                pk__in=Event.objects.filter(type=Event.Type.ESCALATED).values("instance_id")
            )
        return queryset
