"""Incoming callbacks signed the Standard Webhooks way (CONTRACT §2, DJANGO-Q2.md rule 8)."""

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from . import specs
from .auth import ApiError
from .dispatch import _as_whsec, service_secret
from .models import SeenWebhook


def verify_signed_callback(request: HttpRequest, run) -> str:
    """The signing service's name, once the signature, the time window and the id check out."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    service = specs.get_service(run.instance.spec.step(run.step_id).service)
    secret = service_secret(service)
    if not secret:
        raise ApiError(401, "unauthorized", f"service '{service.name}' has no signing secret")
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        # Checks the HMAC in constant time and the ±5 minute timestamp window.
        Webhook(_as_whsec(secret)).verify(request.body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        raise ApiError(401, "bad_signature", f"the webhook signature does not verify: {exc}") from None
    try:
        with transaction.atomic():
            SeenWebhook.objects.create(message_id=headers["webhook-id"][:200])
    except IntegrityError:
        raise ApiError(401, "replayed", "this webhook-id was already used") from None
    return f"service:{service.name}"
