"""The active status-webhook subscriptions, cached per process for a few seconds.

Every change of an instance asks which subscriptions want it; without the cache that would
be one more query per transition. A subscription saved or deleted in this process is seen at
once; one changed elsewhere within SUBSCRIPTION_TTL_SECONDS (docs/webhooks.md).
"""

import time

from django.db.models.signals import post_delete, post_save

from ..models import Subscription

SUBSCRIPTION_TTL_SECONDS = 5.0
_cached: tuple[float, list[Subscription]] | None = None


def active_subscriptions() -> list[Subscription]:
    """Every active subscription (cached for SUBSCRIPTION_TTL_SECONDS)."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > SUBSCRIPTION_TTL_SECONDS:
        _cached = (now, list(Subscription.objects.filter(active=True)))
    return _cached[1]


def forget(**_signal_kwargs) -> None:
    """Read the subscriptions afresh next time."""
    global _cached
    _cached = None


post_save.connect(forget, sender=Subscription, dispatch_uid="hms-subscriptions-saved")
post_delete.connect(forget, sender=Subscription, dispatch_uid="hms-subscriptions-deleted")
