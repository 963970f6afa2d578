"""Public pages for citizens: the tracker of one application (the form that finds it is
web/track_find.py).

The tracker shows the steps of the definition and their state, never the payload, comments
or who works on it. While the instance runs, its `step-list` partial polls itself; a poll
that finds nothing new gets 304 (its If-None-Match, sent by static/workflows_app/poll.js)
or 204 (its `seen`, without that script) from one query (web/conditional.py) and htmx swaps
nothing; a poll that finds the instance ended gets the final partial, without a trigger, as
django-htmx's 286 "stop polling".
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from ..models import StepRun, WorkflowInstance
from ..queries import catalog, outcomes, progress, stats
from ..runtime import notifications
from . import conditional, rendered, timeline
from .request_display import request_context

TRACK = "workflows_app/track.html"
POLL_SECONDS = 5
NOSCRIPT_REFRESH_SECONDS = 20  # without JavaScript the page reloads itself, more gently

STATE_LABELS = {
    "done": _("Done"),
    "current": _("In progress"),
    "waiting": _("Waiting for a member of staff"),
    # The same words as the applicant's email about an escalation (applicant_escalated.txt).
    "escalated": _("Passed to another reviewer"),
    "failed": _("Could not be completed"),
    "skipped": _("Not needed"),
    "upcoming": _("Coming up"),
}
WAITING_FOR_REPLY = _("Waiting for a reply from another service")
IN_BRANCHES = _("In progress: these happen at the same time")
WAITING_FOR_YOU = _("Waiting for your answer")
NOT_REACHED = _("Not reached")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the application's status means for the citizen: a title, what happened in a
    sentence, and what they can do next."""

    title: str
    lead: str
    next: str


# By verdict (queries.outcomes.verdict): the decision in plain words, never "Complete" for a
# refusal. Whether the decision was emailed is said apart (partial `outcome`), only when true.
OUTCOMES = {
    "running": Outcome(
        _("In progress"),
        "",
        _(
            "You do not need to do anything now. This page updates itself as your application moves on."
        ),
    ),
    "approved": Outcome(_("Approved"), _("Your application has been approved."), ""),
    "completed": Outcome(_("Completed"), _("Your application has been dealt with."), ""),
    "refused": Outcome(
        _("Refused"),
        _("Your application has been refused."),
        _(
            "You may apply again, or contact the office and quote your case number to ask about the decision."
        ),
    ),
    "lapsed": Outcome(
        _("Lapsed"),
        _("The time allowed for an answer ran out, so your application was closed."),
        _("You may apply again, or contact the office and quote your case number."),
    ),
    "failed": Outcome(
        _("Stopped because of a problem on our side"),
        _(
            "Your application could not be processed because of a technical problem, not because of anything you did."
        ),
        _(
            "Please contact the office and quote your case number: staff can restart it where it stopped."
        ),
    ),
    "cancelled": Outcome(
        _("Cancelled"),
        _("This application was cancelled and will not go further."),
        _("If you did not expect this, contact the office and quote your case number."),
    ),
}


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@dataclass(frozen=True, slots=True)
class StepRow:
    """One step of the timeline as the citizen reads it."""

    view: progress.StepView
    label: str
    is_current: bool
    tone: str  # the badge's colour: the step's state, or the decision it made
    branches: tuple = ()  # a parallel step's branches (timeline.Branch), side by side
    child: WorkflowInstance | None = None  # a workflow step's child instance
    level: int = 3  # the heading level of its title (deeper inside branches)


@dataclass(frozen=True, slots=True)
class Estimate:
    """How long the current step usually takes and when it should be done."""

    typical: str
    expected: datetime
    late: bool


@require_GET
@never_cache
@vary_on_headers("HX-Request", *conditional.VARY_PAGE)
def track(request: HtmxHttpRequest, instance_id: str) -> HttpResponse:
    if request.htmx and (unchanged := conditional.unchanged_page(request, instance_id)):
        return unchanged
    if not request.htmx and (kept := kept_page(request, instance_id)):
        return kept
    instance, runs = progress.instance_with_runs(instance_id)
    if instance is None:
        return not_found(request)
    context = tracker_context(instance, runs, now=timezone.now())
    if not request.htmx:
        return page(request, instance, context)
    return poll_answer(request, instance, context)


# The page is kept with this in place of the CSRF token of its forms (the language switch, the
# applicant's answer): each request gets its own (web/rendered.py). Random per process, so no
# address can carry it into a page.
CSRF_PLACEHOLDER = f"hms-csrf-{secrets.token_hex(16)}"
# What a kept page may vary on besides its ETag: the notice after a new link was asked for.
LINK_NOTICES = ("", "sent", "later")


def page(request: HttpRequest, instance: WorkflowInstance, context: dict) -> HttpResponse:
    """The whole tracker page, kept for the next reader of the same revision, language and
    notice (web/rendered.py); an address with any other query is rendered, never kept."""
    link_sent = request.GET.get("link", "")
    key = _page_key(context["etag"], request)
    if key is None:
        return render(request, TRACK, {**context, "link_sent": link_sent})
    extra = {"link_sent": link_sent, "csrf_token": CSRF_PLACEHOLDER}
    body = render_to_string(TRACK, {**context, **extra}, request).encode()
    rendered.keep(instance.uuid, key, body)
    return _with_csrf_token(body, request)


def kept_page(request: HttpRequest, instance_id: str) -> HttpResponse | None:
    """The page as this process last rendered it, if the instance has not changed since
    (one query: its revision); None otherwise."""
    found = conditional.page_state(instance_id)
    key = found and _page_key(conditional.page_tag(found[1].revision, found[1].status), request)
    body = rendered.body_for(found[0], key) if key else None
    return None if body is None else _with_csrf_token(body, request)


def _page_key(tag: str, request: HttpRequest) -> str | None:
    """The kept page's key, or None for an address whose query the page is not kept for."""
    notice = request.GET.get("link", "")
    if set(request.GET) - {"link"} or notice not in LINK_NOTICES:
        return None
    return f"page {tag} {request.path} {notice}"


def _with_csrf_token(body: bytes, request: HttpRequest) -> HttpResponse:
    return HttpResponse(body.replace(CSRF_PLACEHOLDER.encode(), get_token(request).encode()))


def poll_answer(request: HtmxHttpRequest, instance, context: dict) -> HttpResponse:
    """A poll that found a change (or the clock moved on): the step list, announced when the
    instance itself changed; stop polling once it has ended."""
    announce = conditional.seen_revision(request) != instance.revision
    body = render_to_string(f"{TRACK}#step-list", {**context, "announce": announce}, request)
    response = HttpResponseStopPolling(body) if instance.is_finished else HttpResponse(body)
    return conditional.tagged(response, context["etag"], conditional.VARY_PAGE)


def not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", status=404)


def tracker_context(instance: WorkflowInstance, runs: list[StepRun], *, now: datetime) -> dict:
    """Everything the tracker shows, from the instance and its runs (plus one query for a
    typical duration, cached)."""
    views = progress.step_views(instance, runs)
    verdict = outcomes.verdict(instance.outcome, instance.status) if instance.is_finished else ""
    decided_at = (instance.outcome or {}).get("step") if verdict in DECISION_LABELS else None
    flat = {
        view.id: _row(
            instance, view, verdict if view.id == decided_at and view.state == "done" else ""
        )
        for view in views
    }
    rows = timeline.nest(catalog.spec_of(instance), flat, progress.children_of(runs))
    currents = [
        row for row in timeline.flatten(rows) if row.is_current and row.view.kind != "parallel"
    ]
    current = currents[0] if currents else None
    return {
        "instance": instance,
        "workflow_name": catalog.spec_of(instance).display_name,
        "parent": progress.parent_of(instance),
        "rows": rows,
        "current": current,
        "currents": currents,
        "estimate": _estimate(instance, current.view, now) if current else None,
        "outcome": OUTCOMES[verdict or "running"],
        "verdict": verdict,
        "reasons": (instance.outcome or {}).get("reasons", []) if verdict else [],
        "emailed": verdict in EMAILED_VERDICTS and decision_emailed(instance, runs),
        "etag": (tag := conditional.page_etag(instance)),
        "version": conditional.seen_token(tag, instance.revision),
        "poll_seconds": POLL_SECONDS,
        "noscript_refresh": NOSCRIPT_REFRESH_SECONDS,
        **request_context(instance, runs, now=now),
    }


EMAILED_VERDICTS = ("approved", "completed", "refused", "lapsed")


def decision_emailed(instance: WorkflowInstance, runs: list[StepRun]) -> bool:
    """Whether the applicant is emailed the decision: a step sent it (the built-in notify), or
    the instance ended in a way that emails the applicant, who gave an address."""
    if not notifications.applicant_email(instance):
        return False
    if instance.status in notifications.APPLICANT_KINDS:
        return True
    return any(run.result == outcomes.DECISION_SENT for run in runs)


# The step that made the decision says which, on its badge.
DECISION_LABELS = {"approved": _("Approved"), "refused": _("Refused"), "lapsed": _("Lapsed")}


def _row(instance: WorkflowInstance, view: progress.StepView, decision: str) -> StepRow:
    if decision:
        return StepRow(view, DECISION_LABELS[decision], False, decision)
    return StepRow(view, _label(instance, view), _is_current(view), view.state)


def _is_current(view: progress.StepView) -> bool:
    return view.run is not None and view.run.is_open


def _label(instance: WorkflowInstance, view: progress.StepView) -> str:
    if view.state == "upcoming" and instance.is_finished:
        return NOT_REACHED
    if view.kind == "parallel" and view.state == "current":
        return IN_BRANCHES
    if view.state == "waiting" and not view.run.is_for_a_person:
        return WAITING_FOR_YOU if instance.awaiting_applicant_since else WAITING_FOR_REPLY
    return STATE_LABELS[view.state]


def _estimate(
    instance: WorkflowInstance, view: progress.StepView, now: datetime
) -> Estimate | None:
    typical = stats.typical_duration(instance.pinned.key, view.id)
    if typical is None:
        return None
    expected = (view.started_at or view.run.created_at) + typical
    return Estimate(typical=timesince(now - typical, now), expected=expected, late=expected < now)
