"""Status webhooks (docs/webhooks.md): an outbox row per change and subscription, written in
the transaction of the change; sent after commit by a worker, signed as Standard Webhooks
specifies, retried with backoff, at least once and in order per instance.

Order: only the oldest undelivered message of a (subscription, instance) pair is ever sent,
and the next one only after it was answered 2xx. A sender claims that message with a
conditional update (a lease), so two workers never send one instance's messages at once; a
sender killed mid-call leaves its lease to run out, and the sweep (`sweep_deliveries`, every
minute) drives the queue again. Retries wait 5 s, 10 s, 20 s ... (at most an hour) plus
jitter; after HMS_WEBHOOK_MAX_ATTEMPTS the message is `failed` and holds the instance's later
messages back until staff "send again" in the admin.
"""

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Min, Q
from django.utils import timezone

from ..models import Subscription, WebhookDelivery, WorkflowInstance
from ..queries import subscriptions
from . import outbound, queue

log = logging.getLogger(__name__)

INSTANCE_UPDATED = "instance.updated"
DELIVER = "workflows_app.tasks.deliver_webhooks"
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0
MAX_MESSAGES_PER_JOB = 50
Pending = WebhookDelivery.State


def record_change(
    instance: WorkflowInstance, *, now: datetime, current_steps: list[str] | None = None
) -> None:
    """Put the instance as it now stands in the outbox of every subscription that wants it
    (in the caller's transaction), and ask a worker to send after commit."""
    wanted = [
        s for s in subscriptions.active_subscriptions() if s.wants(INSTANCE_UPDATED, _key(instance))
    ]
    if not wanted:
        return
    body = message_body(instance, now=now, current_steps=current_steps)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=s, instance=instance, event_type=INSTANCE_UPDATED, body=body,
            next_attempt_at=now,
        )
        for s in wanted
    )  # fmt: skip
    for s in wanted:
        queue.enqueue(DELIVER, s.pk, instance.pk)


def message_body(instance: WorkflowInstance, *, now: datetime, current_steps=None) -> dict:
    """The contract's `instance.updated` body (CONTRACT R2 status webhooks)."""
    if current_steps is None:
        current_steps = [instance.current_step] if instance.current_step else []
    return {
        "type": INSTANCE_UPDATED,
        "instanceId": str(instance.uuid),
        "caseNumber": instance.case_number,
        "workflowId": _key(instance),
        "status": instance.status,
        "currentSteps": list(current_steps),
        "outcome": instance.outcome,
        "time": now.isoformat(),
    }


def _key(instance: WorkflowInstance) -> str:
    return instance.pinned.key


@dataclass(frozen=True, slots=True)
class _Target:
    """What outbound.post needs of a receiver (it signs with `secret`)."""

    name: str
    url: str
    secret: str
    secret_env: str = ""


def deliver(*, subscription_id: int, instance_id: int) -> int:
    """Send this instance's messages to this subscription, oldest first, until one is not
    accepted; returns how many were delivered. A job stops within half the task time-out
    and leaves the rest to a new job (a slow receiver never gets a worker killed)."""
    delivered, stop_at = 0, time.monotonic() + settings.HMS_TASK_TIMEOUT / 2
    for _ in range(MAX_MESSAGES_PER_JOB):
        if time.monotonic() > stop_at:
            queue.enqueue(DELIVER, subscription_id, instance_id)
            break
        message = _claim_head(subscription_id, instance_id, timezone.now())
        if message is None or not _send(message):
            break
        delivered += 1
    return delivered


def _claim_head(subscription_id: int, instance_id: int, now: datetime) -> WebhookDelivery | None:
    """The oldest undelivered message of the pair, claimed by this sender; None when it is
    not due, given up on, or another sender holds it."""
    head = (
        WebhookDelivery.objects.select_related("subscription")
        .filter(subscription_id=subscription_id, instance_id=instance_id)
        .exclude(state=Pending.DELIVERED)
        .order_by("id")
        .first()
    )
    if head is None or head.state != Pending.PENDING or head.next_attempt_at > now:
        return None
    lease = now + timedelta(seconds=settings.HMS_WEBHOOK_LEASE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    claimed = (
        WebhookDelivery.objects.filter(free, pk=head.pk, state=Pending.PENDING, attempts=head.attempts)
        .update(lease_until=lease, attempts=F("attempts") + 1)
    )  # fmt: skip
    if not claimed:
        return None
    head.attempts += 1
    return head


def _send(message: WebhookDelivery) -> bool:
    """One POST of `message`; record what happened. True when the receiver took it (2xx)."""
    sub: Subscription = message.subscription
    body = json.dumps(message.body, separators=(",", ":"), sort_keys=True)
    status, error = None, ""
    try:
        reply = outbound.post(
            _Target(sub.name, sub.url, sub.secret),
            body,
            msg_id=str(message.message_id),
            timeout=(outbound.CONNECT_TIMEOUT, settings.HMS_WEBHOOK_TIMEOUT),
        )
        status = reply.status
        if not 200 <= status < 300:
            error = f"answered {status}"
    except (outbound.UnusableSecret, outbound.AddressRefused) as exc:
        return _record(message, status=None, error=str(exc), give_up=True)
    except outbound.UNREACHABLE as exc:
        error = f"cannot reach {sub.url}: {type(exc).__name__}"
    return _record(message, status=status, error=error, give_up=False)


def _record(message: WebhookDelivery, *, status, error: str, give_up: bool) -> bool:
    now = timezone.now()
    mine = WebhookDelivery.objects.filter(pk=message.pk, attempts=message.attempts)
    if not error:
        mine.update(
            state=Pending.DELIVERED, delivered_at=now, lease_until=None, last_status=status,
            last_error="",
        )  # fmt: skip
        return True
    if give_up or message.attempts >= settings.HMS_WEBHOOK_MAX_ATTEMPTS:
        mine.update(state=Pending.FAILED, lease_until=None, last_status=status, last_error=error)
        log.warning(
            "webhook %s given up after %s attempts: %s", message.pk, message.attempts, error
        )
        return False
    mine.update(
        next_attempt_at=now + backoff(message.attempts), lease_until=None, last_status=status,
        last_error=error,
    )  # fmt: skip
    return False


def backoff(attempts: int) -> timedelta:
    """The wait before attempt `attempts + 1`: 5 s doubled each time, at most an hour, +-20 %."""
    seconds = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)
    return timedelta(seconds=seconds * (0.8 + 0.4 * random.random()))


def sweep_deliveries(*, now: datetime | None = None, limit: int = 500) -> int:
    """Ask a worker to drive every queue whose next message is due and not held (a retry's
    backoff passed, a killed sender's lease ran out, a message whose job was lost)."""
    now = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(state=Pending.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .values("subscription_id", "instance_id")
        .annotate(first=Min("id"))
        .order_by("first")[:limit]
    )
    pairs = [(row["subscription_id"], row["instance_id"]) for row in due]
    for subscription_id, instance_id in pairs:
        queue.enqueue(DELIVER, subscription_id, instance_id)
    return len(pairs)


def send_again(*, delivery_ids: list[int]) -> int:
    """Staff's "send again": failed (or pending) messages become due now, and are sent."""
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk__in=delivery_ids).exclude(state=Pending.DELIVERED)
    pairs = set(rows.values_list("subscription_id", "instance_id"))
    changed = rows.update(state=Pending.PENDING, next_attempt_at=now, lease_until=None)
    for subscription_id, instance_id in sorted(pairs):
        queue.enqueue(DELIVER, subscription_id, instance_id)
    return changed
