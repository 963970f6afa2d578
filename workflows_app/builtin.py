"""Built-in python services. Each is `f(instance, step) -> {"result": ..., "data": {...}}`;
one that raises runtime.dispatch.StepFailed fails its step at once (bad data), any other
exception is retried."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from .queries import outcomes
from .runtime import notifications
from .runtime.dispatch import StepFailed


def notify_applicant(instance, step) -> dict[str, Any]:
    """Email the applicant (payload `email`) the decision so far, in plain words with its
    reasons: the latest person's decision or refusal, else that the application is complete."""
    if not notifications.applicant_email(instance):
        return {"result": "skipped", "data": {"reason": "the application has no email address"}}
    if why := notifications.email_problem(instance.payload.get("email")):
        raise StepFailed(f"payload.email {why}: the applicant cannot be emailed")
    notifications.send_decision(instance, instance.decision)
    return {
        "result": outcomes.DECISION_SENT,
        "data": {"to": notifications.applicant_email(instance)},
    }


# Reasons the applicant reads: written in the application's language (docs/pages.md, Languages).
REQUIRED = {
    "applicant": _("the applicant's name is missing"),
    "address": _("the address of the site is missing"),
}


def accept(instance, step) -> dict[str, Any]:
    """Always answers `ok`: a placeholder step for demos and tests."""
    return {"result": "ok", "data": {}}


def check_required_fields(instance, step) -> dict[str, Any]:
    """Answer `ok` when the payload has an applicant name and an address, else `rejected`."""
    with notifications.applicant_language(instance):
        reasons = [str(why) for key, why in REQUIRED.items() if not instance.payload.get(key)]
    if reasons:
        return {"result": "rejected", "data": {"reasons": reasons}}
    return {"result": "ok", "data": {"checked": ["applicant", "address"]}}
