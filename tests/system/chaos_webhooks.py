"""Status webhooks under chaos (docs/webhooks.md): the flaky service also plays a subscriber.

Its `/hooks` path answers like its `/work` path (500s, slow answers, dropped connections)
and logs every message it is sent. After the instances end, `drain` has the clusters send
what is still pending (the staff's "send again", so no backoff is waited out), and `check`
compares the receiver's log with the outbox: every message received at least once, in
order per instance, the statuses received ending with the instance's final status.
"""

import time
from collections import defaultdict
from typing import Any

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ACCEPTED = ("ok", "slow")  # the receiver answered 200 (a slow answer is within the timeout)


def subscriptions(url: str) -> str:
    """The services document's `subscriptions:` block, the receiver beside the service."""
    hooks = url.rsplit("/", 1)[0] + "/hooks"
    return f'subscriptions:\n  chaosHook: {{ url: "{hooks}", secret: "{SECRET}" }}\n'


def drain(*, within: float, log=print) -> int:
    """Have the clusters send every message still pending; how many were left at the end."""
    from workflows_app.models import WebhookDelivery
    from workflows_app.runtime import webhooks

    deadline = time.monotonic() + within
    pending = WebhookDelivery.objects.exclude(state=WebhookDelivery.State.DELIVERED)
    while (ids := list(pending.values_list("id", flat=True))) and time.monotonic() < deadline:
        log(f"status webhooks: {len(ids)} messages still to deliver")
        webhooks.send_again(delivery_ids=ids)
        time.sleep(2)
    return pending.count()


def messages() -> list[dict[str, Any]]:
    """The outbox, oldest first."""
    from workflows_app.models import WebhookDelivery

    fields = ("id", "message_id", "instance__uuid", "state", "body")
    return [
        {**m, "message_id": str(m["message_id"]), "instance": str(m.pop("instance__uuid"))}
        for m in WebhookDelivery.objects.order_by("id").values(*fields)
    ]


def check(outbox: list[dict[str, Any]], received: list[dict[str, Any]], final: dict[str, str]):
    """Broken promises, in words. `received`: the receiver's log lines for /hooks;
    `final`: each instance's status by uuid."""
    problems = []
    accepted_at: dict[str, int] = {}  # message id -> position of its first accepted receipt
    for position, line in enumerate(received):
        if line.get("choice") in ACCEPTED:
            accepted_at.setdefault(line.get("key", ""), position)
    by_instance = defaultdict(list)
    for message in outbox:
        by_instance[message["instance"]].append(message)
        if message["state"] != "delivered":
            problems.append(f"webhook {message['message_id']} is {message['state']}")
        elif message["message_id"] not in accepted_at:
            problems.append(f"webhook {message['message_id']} delivered but never received")
    for uuid, sent in by_instance.items():
        # (a message never received is reported above, not as out of order)
        order = [accepted_at[m["message_id"]] for m in sent if m["message_id"] in accepted_at]
        if order != sorted(order):
            problems.append(f"webhooks of {uuid} were received out of order")
        if sent[-1]["body"].get("status") != final.get(uuid):
            problems.append(
                f"the last webhook of {uuid} says {sent[-1]['body'].get('status')}, "
                f"the instance is {final.get(uuid)}"
            )
    missing = set(final) - set(by_instance)
    if missing:
        problems.append(f"{len(missing)} instances sent no status webhook at all")
    return problems
