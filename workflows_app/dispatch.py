"""One call to an automated service: a python callable, or one HTTP POST. Never raises.

The reply is classified into an Outcome that services.record_outcome applies:
`done` (a result), `accepted` (202: the answer comes on the callback URL), `retry`
(408, 429, 5xx, connection errors, time-outs, a python exception) or `fail` (other 4xx,
a malformed answer).
"""

import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
DEFAULT_READ_TIMEOUT = 10.0
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # "done" | "accepted" | "retry" | "fail"
    result: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    retry_after: float | None = None


class ServiceNotAllowed(Exception):
    """A python service names a module outside HMS_PYTHON_SERVICES."""


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
    if not answer["result"]:
        return Outcome("fail", error=f'{who} answered with an empty "result"')
    return Outcome("done", result=answer["result"], data=dict(data))


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


def _call_http(service, instance, run) -> Outcome:
    body = json.dumps(request_body(instance, run), separators=(",", ":"), default=str)
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(run.pk)}
    headers.update(signature_headers(service, msg_id=f"{run.pk}-{run.attempts}", body=body))
    timeout = (CONNECT_TIMEOUT, float(service.timeout_seconds or DEFAULT_READ_TIMEOUT))
    try:
        reply = session().post(service.url, data=body.encode(), headers=headers, timeout=timeout)
    except requests.Timeout:
        return Outcome("retry", error=f"{service.url} did not answer within {timeout[1]:g}s")
    except requests.RequestException as exc:
        return Outcome("retry", error=f"cannot reach {service.url}: {type(exc).__name__}")
    return classify(reply, service.name)


def classify(reply: requests.Response, name: str) -> Outcome:
    """Outcome of an HTTP reply (CONTRACT §2)."""
    code = reply.status_code
    who = f"service '{name}'"
    if code == 202:
        return Outcome("accepted")
    if 200 <= code < 300:
        try:
            answer = reply.json()
        except ValueError:
            return Outcome("fail", error=f"{who} answered {code} with a body that is not JSON")
        return _answer(answer, who)
    error = f"{who} answered {code}: {reply.text[:200]}".rstrip(": ")
    if code in RETRYABLE_STATUSES or code >= 500:
        return Outcome("retry", error=error, retry_after=_retry_after(reply))
    return Outcome("fail", error=error)


def _retry_after(reply: requests.Response) -> float | None:
    value = reply.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def service_secret(service) -> str:
    """The signing secret of a service: its own, or from the environment variable it names."""
    import os

    if service.secret_env:
        return os.environ.get(service.secret_env, "")
    return service.secret


def signature_headers(service, *, msg_id: str, body: str) -> dict[str, str]:
    """Standard Webhooks headers for a service with a secret; none otherwise."""
    secret = service_secret(service)
    if not secret:
        return {}
    from standardwebhooks.webhooks import Webhook

    now = datetime.now(UTC)
    signature = Webhook(_as_whsec(secret)).sign(msg_id, now, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def _as_whsec(secret: str) -> str:
    """Standard Webhooks secrets are base64 behind 'whsec_'; raw strings are encoded."""
    import base64

    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()
