"""Asking the applicant: the deadline paused, a signed link emailed, a new link on request.

An `applicant` step's run waits (state `waiting`, no assignee) until the applicant answers
on the tracker through the link emailed to them, or a portal answers for them through the
API (replies.py). The link carries the run's id signed with the site's SECRET_KEY
(django.core.signing) and expires after HMS_RESPOND_LINK_SECONDS; a new one may be asked for
from the tracker, at most HMS_RESPOND_LINKS_PER_HOUR times an hour per application, and goes
to the address the application gave, never to the person asking.
"""

import math
import time
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils.translation import ngettext

from ..engine import TransitionNotAllowed
from ..models import Event, RunState, ServiceKind, Status, StepRun, WorkflowInstance
from ..queries import catalog
from . import notifications, queue
from .guards import add_event, guarded

SALT = "hms.respond"
_LINKS_KEY = "hms:respond-links:"


class LinkRefused(Exception):
    """The link is not (or no longer) valid; `expired` when only its age is wrong."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class TooManyLinks(Exception):
    """New links were asked for too often; `wait` seconds until the next one may be sent."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"a new link can be sent again in {max(1, math.ceil(wait / 60))} min")
        self.wait = wait


def is_request(run: StepRun) -> bool:
    """Whether `run` is of a step that asks the applicant."""
    return catalog.runs_service(catalog.spec_of(run.instance), run.step_id, ServiceKind.APPLICANT)


def ask_applicant(instance: WorkflowInstance, run: StepRun, *, now: datetime) -> None:
    """In the transaction that opened `run`: pause the deadline (unless a request in another
    branch already paused it), email the link after commit."""
    changed = WorkflowInstance.objects.filter(pk=instance.pk, status=Status.RUNNING).update(
        awaiting_applicant_since=Coalesce(F("awaiting_applicant_since"), Value(now)),
        revision=F("revision") + 1,
    )
    if not changed:
        raise TransitionNotAllowed(f"{instance.case_number} is no longer running")
    instance.awaiting_applicant_since = instance.awaiting_applicant_since or now
    _email_link(instance, run)


def _email_link(instance: WorkflowInstance, run: StepRun) -> None:
    email = str(instance.payload.get("email") or "").strip()
    add_event(instance, run, Event.Type.REQUEST_SENT, emailed=bool(email))
    if email:
        queue.enqueue("workflows_app.tasks.send_request_email", str(run.pk))


def remind_applicant(instance: WorkflowInstance, run: StepRun, *, due_at: datetime | None) -> None:
    """The request's time ran out with `onTimeout: retry`: a new deadline and a new link."""
    guarded(run, RunState.WAITING, due_at=due_at, wake_at=due_at)
    add_event(instance, run, Event.Type.REMINDED, due_at=due_at.isoformat() if due_at else None)
    _email_link(instance, run)


def send_request_email(run_id: str) -> int:
    """Job: email the applicant the link to answer a request that still waits."""
    run = StepRun.objects.select_related("instance").filter(pk=run_id).first()
    if run is None or run.state != RunState.WAITING:
        return 0
    instance = run.instance
    email = str(instance.payload.get("email") or "").strip()
    if not email:
        return 0
    spec = catalog.spec_of(instance)
    with notifications.applicant_language(instance):
        context = {
            "instance": instance,
            "workflow_name": spec.display_name,
            "step": spec.step(run.step_id),
            "respond_url": f"{settings.HMS_PUBLIC_URL}{respond_url(run)}",
            "tracker_url": f"{settings.HMS_PUBLIC_URL}{instance.tracker_url}",
            "valid_for": link_age_limit(),
        }
        return notifications.send_templated(
            "workflows_app/email/applicant_request.txt", context, [email]
        )


def respond_token(run: StepRun) -> str:
    """The signed part of the applicant's link to answer `run`."""
    return signing.dumps(str(run.pk), salt=SALT)


def respond_url(run: StepRun) -> str:
    """The path of the applicant's link: /track/{instanceId}/respond/{token}/."""
    return f"{run.instance.tracker_url}respond/{respond_token(run)}/"


def run_for_link(instance_id: UUID, token: str) -> StepRun:
    """The request a link answers, with its instance; LinkRefused when it is not valid."""
    try:
        run_id = signing.loads(token, salt=SALT, max_age=settings.HMS_RESPOND_LINK_SECONDS)
    except signing.SignatureExpired:
        run_id = signing.loads(token, salt=SALT)  # a good signature, only too old
        if _run(run_id, instance_id) is not None:
            raise LinkRefused("this link has expired", expired=True) from None
        raise LinkRefused("this link is not valid") from None
    except signing.BadSignature:
        raise LinkRefused("this link is not valid") from None
    run = _run(run_id, instance_id)
    if run is None:
        raise LinkRefused("this link is not valid")
    return run


def _run(run_id: object, instance_id: UUID) -> StepRun | None:
    try:
        key = UUID(str(run_id))
    except ValueError:
        return None
    runs = StepRun.objects.select_related("instance").filter(pk=key, instance__uuid=instance_id)
    return runs.first()


def open_request(instance: WorkflowInstance, runs: list[StepRun]) -> StepRun | None:
    """The instance's request to the applicant that is waiting for an answer, if any."""
    if instance.awaiting_applicant_since is None:
        return None
    waiting = (run for run in runs if run.state == RunState.WAITING)
    return next((run for run in waiting if is_request(run)), None)


def send_new_link(*, instance: WorkflowInstance, run: StepRun) -> None:
    """Email the applicant a fresh link to answer `run` (rate limited per application)."""
    if run.state != RunState.WAITING or run.instance_id != instance.pk:
        raise TransitionNotAllowed("this request has already been answered or has closed")
    _count_link(instance)
    with transaction.atomic():
        _email_link(instance, run)


def _count_link(instance: WorkflowInstance) -> None:
    """One more link for this application this hour, or TooManyLinks."""
    key, now = f"{_LINKS_KEY}{instance.pk}", time.time()
    sent = [moment for moment in cache.get(key, []) if moment > now - 3600]
    if len(sent) >= settings.HMS_RESPOND_LINKS_PER_HOUR:
        raise TooManyLinks(math.ceil(sent[0] + 3600 - now))
    cache.set(key, [*sent, now], timeout=3600)


def link_age_limit() -> str:
    """How long a link stays valid, for emails and pages, in the active language ("14 days",
    "14 días")."""
    seconds = settings.HMS_RESPOND_LINK_SECONDS
    if seconds >= 86400:
        days = seconds // 86400
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    hours = seconds // 3600
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
