"""Incoming callbacks signed the Standard Webhooks way (docs/http-services.md, docs/queue.md).

The standardwebhooks package checks the HMAC in constant time and the ±5 minute timestamp
window; this module adds the binding to the task (the signed body names it: `taskId`), the
replay check (a webhook-id is accepted once) and turns every refusal into CallbackRefused (the API answers 401 with a JSON error, never a 500,
whatever the headers hold).
"""

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from standardwebhooks.webhooks import WebhookVerificationError

from ..models import SeenWebhook
from ..queries import catalog
from .outbound import UnusableSecret, webhook_for


class CallbackRefused(Exception):
    """A signed callback that does not check out; `code` names why (the API answers 401)."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


# The signature window is ±5 minutes; ids older than twice that can never verify again.
REPLAY_MEMORY = timedelta(minutes=10)
MAX_WEBHOOK_ID = 200


def verify_signed_callback(*, run, body: bytes, headers: Mapping[str, str]) -> str:
    """The signing service's actor name, once the signature, the time window and the id
    check out; CallbackRefused otherwise."""
    spec = catalog.spec_of(run.instance)
    if spec.step(run.step_id).kind != "service":
        raise CallbackRefused("unauthorized", f"step '{run.step_id}' takes no callbacks")
    service = catalog.service_of_step(spec, run.step_id)
    try:
        webhook = webhook_for(service)
    except UnusableSecret as exc:
        raise CallbackRefused("unauthorized", str(exc)) from None
    if webhook is None:
        raise CallbackRefused("unauthorized", f"service '{service.name}' has no signing secret")
    headers = {key.lower(): value for key, value in headers.items()}
    message_id = headers.get("webhook-id", "")
    if len(message_id) > MAX_WEBHOOK_ID:
        raise CallbackRefused(
            "bad_signature", f"webhook-id is longer than {MAX_WEBHOOK_ID} characters"
        )
    try:
        webhook.verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:
        # ValueError: a signature that is not "v1,<base64>", or a body that is not UTF-8.
        raise CallbackRefused(
            "bad_signature", f"the webhook signature does not verify: {exc}"
        ) from None
    _check_bound_to(run, body)
    _remember(message_id)
    return f"service:{service.name}"


def _check_bound_to(run, body: bytes) -> None:
    """The signed body must name this task (`taskId`): a signature made for another task of
    the same service proves nothing about this one."""
    try:
        named = json.loads(body).get("taskId")
    except (ValueError, AttributeError):  # not JSON, or not an object: the API says which
        named = None
    if named is None:
        raise CallbackRefused(
            "bad_signature",
            f'a signed callback must name its task in the body: "taskId": "{run.pk}"',
        )
    if not names_task(named, run.pk):
        raise CallbackRefused(
            "bad_signature", f"this callback was signed for task {named}, not for task {run.pk}"
        )


def names_task(value, task_id: UUID) -> bool:
    """Whether `value` (from a callback body) is this task's id, in any UUID spelling."""
    try:
        return UUID(str(value)) == task_id
    except ValueError:
        return False


def _remember(message_id: str) -> None:
    """Accept a webhook-id once; a second use is a replay."""
    try:
        with transaction.atomic():
            SeenWebhook.objects.create(message_id=message_id)
    except IntegrityError:
        raise CallbackRefused("replayed", "this webhook-id was already used") from None


def forget_old_webhooks(*, now: datetime) -> int:
    """Delete remembered ids too old to verify again (the sweep calls this); returns how many."""
    deleted, _ = SeenWebhook.objects.filter(created_at__lt=now - REPLAY_MEMORY).delete()
    return deleted
