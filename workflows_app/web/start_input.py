"""What a start (POST /api/workflows/start, docs/api.md) checks besides its body's fields:
the language, the limits on anonymous starts, the Idempotency-Key."""

import json

from django.conf import settings
from django.http import HttpRequest

from ..models import ApiToken
from .api_input import field
from .auth import ApiError
from .ratelimit import client_ip
from .throttle import PUBLIC_STARTS

IDEMPOTENCY_KEY_MAX = 255


def start_language(body: dict) -> str:
    """The start's optional `language`: one of the site's language codes (settings.LANGUAGES)."""
    language = field(body, "language", str, default="")
    codes = [code for code, _ in settings.LANGUAGES]
    if language and language not in codes:
        raise ApiError(
            400,
            "invalid_request",
            f"'language' must be one of the site's languages ({', '.join(codes)}), "
            f"not '{language[:20]}'",
        )
    return language


def check_anonymous_start(request: HttpRequest, payload: dict) -> None:
    """An anonymous start: at most HMS_PUBLIC_MAX_PAYLOAD_BYTES of payload, and
    HMS_PUBLIC_STARTS_PER_WINDOW new instances per client address and window (then 429)."""
    client = client_ip(request)
    if wait := PUBLIC_STARTS.wait(client):
        raise ApiError(
            429,
            "too_many_requests",
            f"too many applications from your address; try again in {wait} seconds",
            retry_after=wait,
        )
    limit = settings.HMS_PUBLIC_MAX_PAYLOAD_BYTES
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise ApiError(
            413,
            "payload_too_large",
            f"the payload is {size} bytes; an application without a token may send at most "
            f"{limit} bytes ({limit / 1024:g} KiB)",
        )


def idempotency_key(request: HttpRequest, token: ApiToken | None) -> str | None:
    """The client's key, namespaced by token so that two clients' keys never collide."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ApiError(
            400,
            "invalid_request",
            f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters",
        )
    return f"{token.pk if token else 'public'}:{key}"
