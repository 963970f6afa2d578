"""Actions on a task: claim (or accept), release, decide, reassign.

Each is a POST with the CSRF token. Without JavaScript it redirects back to the task page with
a message (PRG); with HTMX it answers with the action panel, swapped in place. Refusals keep
the page usable: 403 with the reason when the person may not act, 409 when the task moved on
(someone else took or completed it), 400 for a form that is incomplete.
"""

from collections.abc import Callable
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from .. import runtime
from ..engine import TransitionNotAllowed
from ..models import StepRun, WorkflowInstance
from ..queries import catalog
from .inbox import (
    DecisionForm,
    HtmxHttpRequest,
    action_panel,
    forbidden,
    may_view,
    not_yours,
    task_or_404,
    task_page,
)
from .task_display import outcome_label


def _act(
    request: HtmxHttpRequest,
    run_id: UUID,
    action: Callable[[StepRun], str],
    *,
    decision: DecisionForm | None = None,
) -> HttpResponse:
    """Run `action`; answer with the panel (HTMX) or a redirect back (PRG), or the refusal
    (a decision's form comes back with what was typed and its errors on the fields)."""
    run = task_or_404(run_id)
    try:
        notice = action(run)
    except runtime.NotAllowed as refusal:
        return _refused(request, run_id, f"Not possible: {refusal}", status=403)
    except TransitionNotAllowed as conflict:
        return _refused(request, run_id, f"Too late: {conflict}", status=409)
    except ValueError as problem:
        message = f"Please check the form: {problem}"
        return _refused(request, run_id, message, status=400, decision=decision)
    if not request.htmx:
        messages.success(request, notice)
        return redirect("workflows:task", run_id=run_id)
    return action_panel(request, task_or_404(run_id), notice=notice)


def _refused(
    request: HtmxHttpRequest,
    run_id: UUID,
    message: str,
    *,
    status: int,
    decision: DecisionForm | None = None,
) -> HttpResponse:
    """The refusal with its reason; the page or panel as it stands now, when I may see it."""
    message = message.rstrip(". ") + "."  # the services' reasons are lowercase, without a stop
    run = task_or_404(run_id)  # read again: someone else's action may have changed it
    if not may_view(request.user, run):
        return forbidden(request, not_yours(run))  # outsiders learn nothing about the task
    if request.htmx:
        return action_panel(request, run, error=message, status=status, decision=decision)
    return task_page(request, run, error=message, status=status, decision=decision)


@login_required
@require_POST
def claim(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    """Take a group task (or accept an escalated one) so nobody else works on it."""

    def action(run: StepRun) -> str:
        runtime.claim_task(run_id=run.pk, user=request.user)
        verb = "accepted" if run.escalation_level else "claimed"
        return f"You {verb} this task. It is listed under “Assigned to me” until you decide."

    return _act(request, run_id, action)


@login_required
@require_POST
def release(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    """Give a claimed task back to its group."""

    def action(run: StepRun) -> str:
        runtime.release_task(run_id=run.pk, user=request.user)
        return "You released this task. It is back in the group's list for anyone to claim."

    return _act(request, run_id, action)


@login_required
@require_POST
def decide(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    """Record an outcome (approved, rejected, ...) with a reason for the applicant and a note
    for staff; the workflow moves on. A problem comes back on its field."""
    form = DecisionForm(request.POST)

    def action(run: StepRun) -> str:
        if not form.is_valid():
            raise ValueError(_first_error(form))
        values = form.cleaned_data
        try:
            instance = runtime.decide_task(run_id=run.pk, user=request.user, **values)
        except runtime.InvalidDecision as problem:
            form.add_error(problem.field, str(problem))
            raise
        return _decided(instance, outcome_label(values["result"]))

    return _act(request, run_id, action, decision=form)


def _first_error(form: DecisionForm) -> str:
    """The first problem of the form, in words ("the reason: ...")."""
    name, errors = next(iter(form.errors.items()))
    return f"the {name}: {errors[0]}" if name != "result" else errors[0]


def _decided(instance: WorkflowInstance, label: str) -> str:
    if instance.is_finished:
        return f"Recorded “{label}”. {instance.case_number} is now {instance.status}."
    step = catalog.spec_of(instance).step(instance.current_step).display_title
    return f"Recorded “{label}”. {instance.case_number} moves on to “{step}”."


@login_required
@require_POST
def reassign(request: HtmxHttpRequest, run_id: UUID) -> HttpResponse:
    """Supervisors: hand the task to another group or person, with a reason."""
    to = request.POST.get("to", "").strip()
    reason = request.POST.get("reason", "").strip()

    def action(run: StepRun) -> str:
        runtime.reassign_task(run_id=run.pk, to=to, reason=reason, actor=request.user)
        return f"Reassigned to {to}. The history records your reason."

    return _act(request, run_id, action)
