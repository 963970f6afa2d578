"""One call to an automated service: a python callable, or one HTTP POST. Never raises.

The reply is classified into an Outcome that services.record_outcome applies:
`done` (a result), `accepted` (202: the answer comes on the callback URL), `retry`
(408, 429, 5xx, connection errors, time-outs, a python exception) or `fail` (other 4xx and
3xx, a malformed answer, an unusable signing secret). docs/http-services.md is the protocol.
"""

import base64
import binascii
import importlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import ReadTimeoutError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
DEFAULT_READ_TIMEOUT = 10.0
RETRYABLE_STATUSES = frozenset({408, 429})
# What a service may answer; more is refused rather than stored in the instance's context.
MAX_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # "done" | "accepted" | "retry" | "fail"
    result: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    retry_after: float | None = None


class ServiceNotAllowed(Exception):
    """A python service names a module outside HMS_PYTHON_SERVICES."""


class UnusableSecret(Exception):
    """A service has a signing secret configured that cannot be used (missing or malformed)."""


def call(*, service, instance, run, step) -> Outcome:
    """Run one attempt of `run` against `service` and classify what came back."""
    if service.kind == "python":
        return _call_python(service, instance, step)
    if service.kind == "http":
        return _call_http(service, instance, run)
    return Outcome("fail", error=f"service '{service.name}' ({service.kind}) cannot be dispatched")


# --- python --------------------------------------------------------------------------------


def load_callable(path: str):
    """Import `module.func`, refusing modules outside the HMS_PYTHON_SERVICES prefixes."""
    if not any(path == p or path.startswith(p + ".") for p in settings.HMS_PYTHON_SERVICES):
        allowed = ", ".join(settings.HMS_PYTHON_SERVICES)
        raise ServiceNotAllowed(f"'{path}' is outside the allowed modules ({allowed})")
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _call_python(service, instance, step) -> Outcome:
    try:
        func = load_callable(service.callable)
    except (ServiceNotAllowed, ImportError, AttributeError, ValueError) as exc:
        return Outcome("fail", error=f"python service '{service.name}': {exc}")
    try:
        answer = func(instance, step)
    except Exception as exc:  # noqa: BLE001 - a built-in's failure is retried, not a crash
        log.warning("python service %s raised", service.name, exc_info=True)
        return Outcome("retry", error=f"{service.callable} raised {type(exc).__name__}: {exc}")
    return _answer(answer, f"python service '{service.name}'")


def _answer(answer: Any, who: str) -> Outcome:
    """A service's `{"result": ..., "data": {...}}`, checked."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("result"), str):
        return Outcome("fail", error=f'{who} answered without a "result" string')
    data = answer.get("data") or {}
    if not isinstance(data, Mapping):
        return Outcome("fail", error=f'{who} answered with "data" that is not an object')
    if not answer["result"].strip():
        return Outcome("fail", error=f'{who} answered with an empty "result"')
    return Outcome("done", result=answer["result"].strip(), data=dict(data))


# --- http ----------------------------------------------------------------------------------

_session: requests.Session | None = None


def session() -> requests.Session:
    """The process's pooled HTTP session (created lazily, after qcluster forks)."""
    global _session
    if _session is None:
        _session = requests.Session()
        _session.mount("http://", HTTPAdapter(pool_connections=16, pool_maxsize=32))
        _session.mount("https://", HTTPAdapter(pool_connections=16, pool_maxsize=32))
    return _session


def request_body(instance, run) -> dict[str, Any]:
    """The JSON body CONTRACT §2 specifies."""
    return {
        "instanceId": str(instance.uuid),
        "workflowId": instance.pinned.key,
        "step": run.step_id,
        "attempt": run.attempts,
        "payload": instance.payload,
        "context": instance.context,
        "callbackUrl": f"{settings.HMS_PUBLIC_URL}/api/tasks/{run.pk}/complete",
    }


def read_timeout(service) -> float:
    """The service's time-out, kept below the worker's task time-out so a slow call is retried
    by us rather than killed by django-q2 (which would leave the run to its lease)."""
    wanted = float(service.timeout_seconds or DEFAULT_READ_TIMEOUT)
    ceiling = settings.HMS_TASK_TIMEOUT - CONNECT_TIMEOUT - 2
    return max(1.0, min(wanted, ceiling))


def _call_http(service, instance, run) -> Outcome:
    body = json.dumps(request_body(instance, run), separators=(",", ":"), default=str)
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(run.pk)}
    try:
        # Each attempt is its own message (its body carries the attempt number), so it gets
        # its own webhook-id; the Idempotency-Key is what stays the same.
        headers.update(signature_headers(service, msg_id=f"{run.pk}-{run.attempts}", body=body))
    except UnusableSecret as exc:
        return Outcome("fail", error=str(exc))
    timeout = (CONNECT_TIMEOUT, read_timeout(service))
    try:
        with session().post(
            service.url,
            data=body.encode(),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as reply:
            content = _read_capped(reply)
    except (requests.Timeout, ReadTimeoutError):
        return Outcome("retry", error=f"{service.url} did not answer within {timeout[1]:g}s")
    except (requests.RequestException, TransportError) as exc:
        return Outcome("retry", error=f"cannot reach {service.url}: {type(exc).__name__}")
    if content is None:
        return Outcome("fail", error=f"service '{service.name}' answered more than 1 MiB")
    return classify(reply.status_code, reply.headers, content, service.name)


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


def classify(code: int, headers: Mapping[str, str], content: bytes, name: str) -> Outcome:
    """Outcome of an HTTP reply (CONTRACT §2)."""
    who = f"service '{name}'"
    if code == 202:
        return Outcome("accepted")
    if 200 <= code < 300:
        try:
            answer = json.loads(content)
        except ValueError:
            return Outcome("fail", error=f"{who} answered {code} with a body that is not JSON")
        return _answer(answer, who)
    text = " ".join(content[:200].decode(errors="replace").split())
    error = f"{who} answered {code}" + (f": {text}" if text else "")
    if code in RETRYABLE_STATUSES or code >= 500:
        return Outcome("retry", error=error, retry_after=retry_after(headers.get("Retry-After")))
    return Outcome("fail", error=error)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delay-seconds or an HTTP-date), or None."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


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
