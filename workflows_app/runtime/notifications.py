"""Emails to assignees and applicants, sent by a worker after the change has committed.

Texts are plain-language templates in templates/workflows_app/email/<kind>.txt whose first
line is the subject. Sending is a queued job, so a slow mail server never holds a
transaction or a web request.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.utils import translation

from ..models import Status, StepRun, WorkflowInstance
from ..queries import catalog, outcomes
from . import queue

log = logging.getLogger(__name__)

TASK_KINDS = ("assigned", "reminder", "escalated", "reassigned")
APPLICANT_KINDS = ("escalated", "rejected", "failed", "cancelled")


def email_problem(value) -> str | None:
    """Why `payload.email` cannot be mailed (not text, not an address, CR/LF in it), or None
    when it can; an empty or missing one is no problem (nobody is emailed)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "must be an email address in text"
    try:
        validate_email(value.strip())
    except ValidationError:
        shown = " ".join(repr(value)[1:-1].split())[:80]
        return f"'{shown}' is not a valid email address"
    return None


def task_assigned(run, *, kind: str) -> None:
    """After commit, tell the people who may act on `run` that it needs them."""
    if settings.HMS_NOTIFY_TASKS:
        queue.enqueue("workflows_app.tasks.send_task_email", str(run.pk), kind)


def applicant_update(instance, *, kind: str) -> None:
    """After commit, tell the applicant (payload `email`) how their application stands."""
    if applicant_email(instance):
        queue.enqueue("workflows_app.tasks.send_applicant_email", instance.pk, kind)


def recipients_of(run) -> list[str]:
    """Email addresses of the assignee, or of the active members of the assigned group."""
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    if run.assignee_user_id:
        users = users.filter(pk=run.assignee_user_id)
    elif run.assignee_group_id:
        users = users.filter(groups=run.assignee_group_id)
    else:
        return []
    return sorted(set(users.values_list("email", flat=True)))


def send_task_email(run_id: str, kind: str) -> int:
    """Job: email the assignees of one task; returns how many were sent."""
    run = StepRun.objects.select_related("instance").filter(pk=run_id).first()
    if run is None or not run.is_open or kind not in TASK_KINDS:
        return 0
    to = recipients_of(run)
    if not to:
        return 0
    spec = catalog.spec_of(run.instance)
    context = {
        "run": run,
        "instance": run.instance,
        "workflow_name": spec.display_name,
        "step": spec.step(run.step_id),
        "task_url": f"{settings.HMS_PUBLIC_URL}/tasks/{run.pk}/",
    }
    return send_templated(f"workflows_app/email/task_{kind}.txt", context, to)


def send_applicant_email(instance_id: int, kind: str) -> int:
    """Job: email the applicant an update on their application (a refusal: the decision)."""
    instance = WorkflowInstance.objects.filter(pk=instance_id).first()
    email = applicant_email(instance) if instance else ""
    if not email or kind not in APPLICANT_KINDS or email_problem(email):
        return 0  # a malformed address (stored before starts were checked) is never mailed
    if kind == Status.REJECTED:
        return send_decision(instance, instance.outcome, status=instance.status)
    template = f"workflows_app/email/applicant_{kind}.txt"
    with applicant_language(instance):
        return send_templated(template, _applicant_context(instance), [email])


def send_decision(instance: WorkflowInstance, outcome: dict | None, *, status=None) -> int:
    """Email the applicant a decision in plain words (approved, refused, ...) with its reasons;
    `outcome` may be the latest decision of an instance that still runs (the notify step)."""
    email = applicant_email(instance)
    if not email or email_problem(email):
        return 0
    with applicant_language(instance):
        context = {
            **_applicant_context(instance),
            "verdict": outcomes.verdict(outcome, status),
            "reasons": (outcome or {}).get("reasons", []),
        }
        return send_templated("workflows_app/email/applicant_decision.txt", context, [email])


def applicant_language(instance: WorkflowInstance) -> translation.override:
    """Emails to the applicant are written in the application's language (`language`, given at
    start or the tracker's when they answered), else the site's default."""
    return translation.override(instance.language or settings.LANGUAGE_CODE)


def applicant_email(instance: WorkflowInstance) -> str:
    """The applicant's email address (payload `email`), or ""."""
    return str(instance.payload.get("email") or "").strip()


def _applicant_context(instance: WorkflowInstance) -> dict:
    return {
        "instance": instance,
        "workflow_name": catalog.spec_of(instance).display_name,
        "tracker_url": f"{settings.HMS_PUBLIC_URL}{instance.tracker_url}",
    }


def send_templated(template: str, context: dict, to: list[str]) -> int:
    """Render a plain-text email template (its first line is the subject) and send it."""
    subject, _, body = render_to_string(template, context).strip().partition("\n")
    return send_mail(subject.strip(), body.strip() + "\n", None, to)
