"""Incoming callbacks signed the Standard Webhooks way (CONTRACT §2, DJANGO-Q2.md rule 8).

The standardwebhooks package checks the HMAC in constant time and the ±5 minute timestamp
window; this module adds the replay check (a webhook-id is accepted once) and turns every
refusal into a 401 with a JSON error, never a 500, whatever the headers hold.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from standardwebhooks.webhooks import WebhookVerificationError

from . import specs
from .auth import ApiError
from .dispatch import UnusableSecret, webhook_for
from .models import SeenWebhook

# The signature window is ±5 minutes; ids older than twice that can never verify again.
REPLAY_MEMORY = timedelta(minutes=10)
MAX_WEBHOOK_ID = 200


def verify_signed_callback(request: HttpRequest, run) -> str:
    """The signing service's name, once the signature, the time window and the id check out."""
    service = specs.get_service(run.instance.spec.step(run.step_id).service)
    try:
        webhook = webhook_for(service)
    except UnusableSecret as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    if webhook is None:
        raise ApiError(401, "unauthorized", f"service '{service.name}' has no signing secret")
    headers = {key.lower(): value for key, value in request.headers.items()}
    message_id = headers.get("webhook-id", "")
    if len(message_id) > MAX_WEBHOOK_ID:
        raise ApiError(
            401, "bad_signature", f"webhook-id is longer than {MAX_WEBHOOK_ID} characters"
        )
    try:
        webhook.verify(request.body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:
        # ValueError: a signature that is not "v1,<base64>", or a body that is not UTF-8.
        raise ApiError(
            401, "bad_signature", f"the webhook signature does not verify: {exc}"
        ) from None
    _remember(message_id)
    return f"service:{service.name}"


def _remember(message_id: str) -> None:
    """Accept a webhook-id once; a second use is a replay."""
    try:
        with transaction.atomic():
            SeenWebhook.objects.create(message_id=message_id)
    except IntegrityError:
        raise ApiError(401, "replayed", "this webhook-id was already used") from None


def forget_old_webhooks(*, now: datetime) -> int:
    """Delete remembered ids too old to verify again (the sweep calls this); returns how many."""
    deleted, _ = SeenWebhook.objects.filter(created_at__lt=now - REPLAY_MEMORY).delete()
    return deleted
