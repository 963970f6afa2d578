"""Who is a monitor: a token with the `metrics` scope, or a client address in HMS_METRICS_ALLOW.

Monitors read what the public must not: `/healthz`'s checks (the database vendor, the queue's
depth, worker ticks). Everyone else is told only whether the site is healthy.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest

from ..models import ApiToken
from .auth import bearer_token
from .ratelimit import client_ip


def is_monitor(request: HttpRequest) -> bool:
    """Whether the caller may read monitoring detail (CONTRACT §6: HMS_METRICS_ALLOW)."""
    if _allowed_address(client_ip(request)):
        return True
    token = bearer_token(request)
    return token is not None and token.allows(ApiToken.Scope.METRICS)


def _allowed_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in settings.HMS_METRICS_ALLOW:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a malformed entry allows nobody
    return False
