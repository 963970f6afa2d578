"""One call to an automated service: a python callable, or one HTTP POST. Never raises.

The reply is classified into an Outcome that steps.record_outcome applies:
`done` (a result), `accepted` (202: the answer comes on the callback URL), `retry`
(408, 429, 5xx, connection errors, time-outs, a python exception) or `fail` (other 4xx and
3xx, a malformed answer, an unusable signing secret). docs/http-services.md is the protocol.
"""

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings

from ..queries import catalog
from . import callcounts, outbound

log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT = 10.0
RETRYABLE_STATUSES = frozenset({408, 429})


class StepFailed(Exception):
    """Raised by a python service when retrying cannot help (bad data): the step fails at once
    with the message as its error. Any other exception is retried."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # "done" | "accepted" | "retry" | "fail"
    result: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    error: str = ""
    retry_after: float | None = None


def call(*, service, instance, run, step) -> Outcome:
    """Run one attempt of `run` against `service` and classify what came back."""
    if service.kind == "python":
        return _call_python(service, instance, step)
    if service.kind == "http":
        return _call_http(service, instance, run)
    return Outcome("fail", error=f"service '{service.name}' ({service.kind}) cannot be dispatched")


# --- python --------------------------------------------------------------------------------


def _call_python(service, instance, step) -> Outcome:
    try:
        func = catalog.load_callable(service.callable)
    except (catalog.ServiceNotAllowed, ImportError, AttributeError, ValueError) as exc:
        return Outcome("fail", error=f"python service '{service.name}': {exc}")
    try:
        answer = func(instance, step)
    except StepFailed as exc:
        return Outcome("fail", error=f"python service '{service.name}': {exc}")
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


def request_body(instance, run) -> dict[str, Any]:
    """The JSON body of the service protocol (docs/http-services.md)."""
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
    ceiling = settings.HMS_TASK_TIMEOUT - outbound.CONNECT_TIMEOUT - 2
    return max(1.0, min(wanted, ceiling))


def _call_http(service, instance, run) -> Outcome:
    began = time.monotonic()
    outcome = _post_step(service, instance, run)
    callcounts.count_call(
        service=service.name, outcome=outcome.kind, seconds=time.monotonic() - began
    )
    return outcome


def _post_step(service, instance, run) -> Outcome:
    body = json.dumps(request_body(instance, run), separators=(",", ":"), default=str)
    # Each attempt is its own message (its body carries the attempt number), so it gets its
    # own webhook-id; the Idempotency-Key is what stays the same.
    timeout = (outbound.CONNECT_TIMEOUT, read_timeout(service))
    try:
        reply = outbound.post(
            service,
            body,
            msg_id=f"{run.pk}-{run.attempts}",
            headers={"Idempotency-Key": str(run.pk)},
            timeout=timeout,
        )
    except (outbound.UnusableSecret, outbound.AddressRefused) as exc:
        return Outcome("fail", error=f"service '{service.name}': {exc}")
    except outbound.TIMEOUTS:
        return Outcome("retry", error=f"{service.url} did not answer within {timeout[1]:g}s")
    except outbound.UNREACHABLE as exc:
        return Outcome("retry", error=f"cannot reach {service.url}: {type(exc).__name__}")
    if reply.content is None:
        return Outcome("fail", error=f"service '{service.name}' answered more than 1 MiB")
    return classify(reply.status, reply.headers, reply.content, service.name)


def classify(code: int, headers: Mapping[str, str], content: bytes, name: str) -> Outcome:
    """Outcome of an HTTP reply (docs/http-services.md)."""
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
