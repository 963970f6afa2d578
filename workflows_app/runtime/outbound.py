"""Every HTTP request we send to a service: one signed POST, no redirects, a capped reply.

Dispatch calls services through `post`, and so does the admin's "send a signed ping", so a
request is built, signed and read the same way everywhere. Signatures follow Standard
Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
"""

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError

CONNECT_TIMEOUT = 3.05
# What a service may answer; more is refused rather than stored in the instance's context.
MAX_ANSWER_BYTES = 1024 * 1024
# What `post` may raise besides UnusableSecret: a time-out, or no connection at all.
TIMEOUTS = (requests.Timeout, ReadTimeoutError)
UNREACHABLE = (requests.RequestException, TransportError)


class UnusableSecret(Exception):
    """A service has a signing secret configured that cannot be used (missing or malformed)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What a service answered; `content` is None when it was over MAX_ANSWER_BYTES."""

    status: int
    headers: Mapping[str, str]
    content: bytes | None


def post(
    service,
    body: str,
    *,
    msg_id: str,
    timeout: tuple[float, float],
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """POST `body` (JSON text) to the service's URL, signed when it has a secret."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    sent.update(signature_headers(service, msg_id=msg_id, body=body))
    with session().post(
        service.url,
        data=body.encode(),
        headers=sent,
        timeout=timeout,
        allow_redirects=False,
        stream=True,
    ) as reply:
        return Reply(reply.status_code, reply.headers, _read_capped(reply))


_session: requests.Session | None = None


def session() -> requests.Session:
    """The process's pooled HTTP session (created lazily, after qcluster forks)."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=32))
        _session.mount("https://", HTTPAdapter(pool_connections=16, pool_maxsize=32))
    return _session


def _read_capped(reply: requests.Response) -> bytes | None:
    """The reply's body, or None when it is over MAX_ANSWER_BYTES."""
    chunks, size = [], 0
    # iter_content, read to the end, lets the pooled connection be reused (keep-alive).
    for chunk in reply.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --- signatures (Standard Webhooks) --------------------------------------------------------


def service_secret(service) -> str:
    """The signing secret of a service: its own, or from the environment variable it names."""
    if service.secret_env:
        return os.environ.get(service.secret_env, "")
    return service.secret


def webhook_for(service) -> Webhook | None:
    """The Standard Webhooks signer/verifier of a service; None when it has no secret.

    Raises UnusableSecret when a secret is configured but missing from the environment or
    not decodable, so that a signed service is never called unsigned.
    """
    secret = service_secret(service)
    if not secret:
        if service.secret_env:
            raise UnusableSecret(
                f"service '{service.name}' signs with the environment variable "
                f"{service.secret_env}, which is not set"
            )
        return None
    try:
        return Webhook(_as_whsec(secret))
    except (EmptyWebhookSecretError, binascii.Error, ValueError) as exc:
        raise UnusableSecret(f"service '{service.name}' has an unusable secret: {exc}") from None


def signature_headers(service, *, msg_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers for a service with a secret; none otherwise."""
    webhook = webhook_for(service)
    if webhook is None:
        return {}
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook.sign(msg_id, now, body),
    }


def _as_whsec(secret: str) -> str:
    """Standard Webhooks secrets are base64 behind 'whsec_'; raw strings are encoded."""
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()
