"""Built-in python services. Each is `f(instance, step) -> {"result": ..., "data": {...}}`."""

from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from .queries import catalog


def notify_applicant(instance, step) -> dict[str, Any]:
    """Email the applicant (payload `email`) how their application stands."""
    email = str(instance.payload.get("email") or "").strip()
    if not email:
        return {"result": "skipped", "data": {"reason": "the application has no email address"}}
    outcome = instance.context.get("approve", {}).get("comment", "")
    subject = f"Your application {instance.case_number}"
    body = (
        f"Hello,\n\nthere is news about your application {instance.case_number} "
        f"({catalog.spec_of(instance).display_name}).\n\n"
        f"{outcome}\n\nFollow it here: {settings.HMS_PUBLIC_URL}{instance.tracker_url}\n"
    )
    send_mail(subject, body, None, [email])
    return {"result": "sent", "data": {"to": email}}


def accept(instance, step) -> dict[str, Any]:
    """Always answers `ok`: a placeholder step for demos and tests."""
    return {"result": "ok", "data": {}}


def check_required_fields(instance, step) -> dict[str, Any]:
    """Answer `ok` when the payload has an applicant name and an address, else `rejected`."""
    missing = [key for key in ("applicant", "address") if not instance.payload.get(key)]
    if missing:
        return {"result": "rejected", "data": {"reasons": [f"{key} is missing" for key in missing]}}
    return {"result": "ok", "data": {"checked": ["applicant", "address"]}}
