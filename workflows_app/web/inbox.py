"""The staff task inbox (/tasks/) and the task page; the actions live in task_actions.py.

The inbox lists my tasks, my groups' unclaimed tasks and escalations offered to me, sortable
and filterable; with HTMX only the list partial is sent. The task page shows the application
(always escaped), its history, and the action panel that task_actions.py swaps in place.
"""

from typing import Any
from uuid import UUID

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from ..models import StepRun
from ..queries import catalog, progress, worklists
from ..runtime import permissions
from ..runtime.answers import DECISION_TEXT_MAX
from .files import download
from .task_display import (
    event_row,
    findings,
    outcome_label,
    passed_on_row,
    payload_fields,
    task_row,
)


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


TASK_PAGE = "workflows_app/task.html"
SECTIONS = (
    ("mine", "Assigned to me"),
    ("group", "My groups' tasks"),
    ("offered", "Offered to me as a backup"),
)
EMPTY = {
    "mine": "Nothing is assigned to you. Claim a task under “My groups' tasks” to make it yours.",
    "group": "No tasks wait for you. New tasks appear here when an application reaches a "
    "step your group handles.",
    "offered": "Nothing has been escalated to you. When a task is not handled in time, it is "
    "offered here to its backup reviewers, who can accept it.",
}
NO_GROUPS = (
    "You are not in any reviewer group yet, so no group tasks reach you. Ask an administrator "
    "to add you to one."
)
FILTERED = " Choose “All workflows” to see tasks of other workflows."
SORTS = (("due", "Due soonest"), ("waited", "Waited longest"), ("case", "Case number"))


class InboxFilter(forms.Form):
    """The GET form above the list; an unknown value falls back to its default."""

    view = forms.ChoiceField(
        label="Show", required=False, choices=[("all", "All my tasks"), *SECTIONS]
    )
    workflow = forms.ChoiceField(label="Workflow", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=SORTS)

    def __init__(self, data, *, workflows: list[tuple[str, str]]):
        super().__init__(data)
        self.fields["workflow"].choices = [("", "All workflows"), *workflows]

    def value(self, name: str, default: str) -> str:
        """The cleaned value of one field, or `default` when it is missing or invalid."""
        self.is_valid()
        return self.cleaned_data.get(name) or default


class DecisionForm(forms.Form):
    """A decision: the outcome (the button pressed), a reason for the applicant, a staff note.

    Whether a reason is required (to refuse) is the runtime's rule; its refusal is put on the
    `reason` field like the form's own errors."""

    result = forms.CharField(max_length=64, error_messages={"required": "choose an outcome"})
    reason = forms.CharField(
        required=False, max_length=DECISION_TEXT_MAX, widget=forms.Textarea, strip=True
    )
    note = forms.CharField(
        required=False, max_length=DECISION_TEXT_MAX, widget=forms.Textarea, strip=True
    )


# --- The inbox -----------------------------------------------------------------------------


@login_required
@require_GET
@vary_on_headers("HX-Request")
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    """The tasks waiting for me, in three sections; the list alone for an HTMX request."""
    workflows = [(d.key, catalog.spec_of(d).display_name) for d in catalog.latest_definitions()]
    form = InboxFilter(request.GET, workflows=workflows)
    view, sort = form.value("view", "all"), form.value("sort", "due")
    workflow = form.value("workflow", "") or None
    now = timezone.now()
    in_groups = request.user.groups.exists()
    sections = []
    for key, title in SECTIONS:
        if view not in ("all", key):
            continue
        runs = worklists.inbox_tasks(request.user, view=key, sort=sort, workflow=workflow)
        empty = NO_GROUPS if key != "mine" and not in_groups else EMPTY[key]
        sections.append(
            {
                "key": key,
                "title": title,
                "empty": empty + (FILTERED if workflow else ""),
                "rows": [task_row(run, now) for run in runs],
            }
        )
    template = "workflows_app/inbox.html" + ("#task-list" if request.htmx else "")
    passed_on = [passed_on_row(event) for event in worklists.passed_on_from(request.user, now=now)]
    context = {"form": form, "sections": sections, "passed_on": passed_on}
    return render(request, template, context)


# --- The task page -------------------------------------------------------------------------


@login_required
@require_GET
def task(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    """One task: the application, its history, and what I may do with it."""
    run = task_or_404(run_id)
    if not may_view(request.user, run):
        return forbidden(request, not_yours(run))
    return task_page(request, run)


@login_required
@require_GET
def task_document(request: HtmxHttpRequest, run_id: UUID, document_id: UUID) -> HttpResponse:
    """A document of the task's application, to staff who may see the task."""
    run = task_or_404(run_id)
    if not may_view(request.user, run):
        return forbidden(request, not_yours(run))
    document = progress.document_by_id(document_id)
    if document is None or document.instance_id != run.instance_id:
        raise Http404("no such document")
    return download(document)


def task_or_404(run_id: UUID) -> StepRun:
    """The task with what its page shows; 404 for an unknown id or an automated step's run."""
    run = worklists.task_for_page(run_id)
    if run is None or not run.is_for_a_person:
        raise Http404("no such task")
    return run


def may_view(user, run: StepRun) -> bool:
    """Supervisors, the assignee, the claimant, the decider, members of the group, and (read
    only) whoever had it before it was escalated or reassigned away from them."""
    if user.pk in (run.assignee_user_id, run.claimed_by_id) or permissions.is_supervisor(user):
        return True
    if run.completed_by and run.completed_by == permissions.actor_of(user):
        return True
    if run.assignee_group_id and user.groups.filter(pk=run.assignee_group_id).exists():
        return True
    return worklists.was_passed_on_from(user, run)


def not_yours(run: StepRun) -> str:
    """Why an outsider may not see a task, naming only its group."""
    owner = run.assignee_group.name if run.assignee_group else "another person"
    return f"This task belongs to {owner}, and you are not one of its reviewers."


def forbidden(request: HtmxHttpRequest, message: str) -> HttpResponse:
    """403 that says why, without anything of the application (a fragment for HTMX)."""
    template = TASK_PAGE + ("#refusal" if request.htmx else "")
    return render(request, template, {"error": message}, status=403)


def task_page(
    request: HtmxHttpRequest,
    run: StepRun,
    *,
    error: str = "",
    status: int = 200,
    decision: DecisionForm | None = None,
) -> HttpResponse:
    """The whole task page (also after a refusal, with the reason and its status)."""
    context = {
        "task": task_row(run, timezone.now()),
        "fields": payload_fields(run.instance.payload),
        "documents": progress.documents_of(run.instance),
        **_history_context(run),
        **_panel_context(request.user, run, error=error, decision=decision),
    }
    return render(request, TASK_PAGE, context, status=status)


def _history_context(run: StepRun) -> dict[str, Any]:
    instance = run.instance
    runs = progress.runs_of(instance)
    steps = progress.step_views(instance, runs)
    titles = {step.id: step.title for step in steps}
    events = [event_row(event, titles) for event in progress.events_of(instance)]
    return {"steps": steps, "events": events, "findings": findings(runs, titles)}


def _panel_context(
    user, run: StepRun, *, notice: str = "", error: str = "", decision=None
) -> dict[str, Any]:
    can_act = permissions.may_act(user, run)
    can_reassign = run.is_open and permissions.is_supervisor(user)
    return {
        "run": run,
        "notice": notice,
        "error": error,
        "why_not": "" if can_act or not run.is_open else permissions.refusal(user, run),
        "outcomes": [(r, outcome_label(r)) for r in permissions.allowed_results(run)]
        if can_act
        else [],
        "can_claim": can_act and bool(run.assignee_group_id) and not run.claimed_by_id,
        "can_release": run.is_open and run.claimed_by_id == user.pk,
        "can_reassign": can_reassign,
        "assignees": _assignee_choices() if can_reassign else [],
        "decision": decision or DecisionForm(),
        "text_max": DECISION_TEXT_MAX,
    }


def _assignee_choices() -> list[str]:
    return [
        f"group:{name}" for name in Group.objects.order_by("name").values_list("name", flat=True)
    ]


def action_panel(
    request: HtmxHttpRequest,
    run: StepRun,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    decision: DecisionForm | None = None,
) -> HttpResponse:
    """The action panel, with the history swapped out of band (an action adds events)."""
    context = {
        **_panel_context(request.user, run, notice=notice, error=error, decision=decision),
        **_history_context(run),
        "oob": True,
    }
    body = render_to_string(TASK_PAGE + "#action-panel", context, request=request)
    body += render_to_string(TASK_PAGE + "#history", context, request=request)
    return HttpResponse(body, status=status)
