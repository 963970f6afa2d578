"""The JSON API (CONTRACT §3): parse, authorise, call a service or selector, serialize.

Every answer is JSON, errors included ({"error": CODE, "detail": TEXT}); exceptions are
mapped to statuses in one place, `api_view`.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import selectors, services
from ..auth import ApiError, authenticate, authorize_callback
from ..engine import TransitionNotAllowed
from ..models import ApiToken, StepRun, WorkflowInstance
from ..openapi import OPENAPI
from ..serializers import instance_status

RESULT_MAX = 64


def error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status)


def api_view(*methods: str) -> Callable:
    """Allow `methods`, and turn every refusal into its JSON error and status."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            if request.method not in methods:
                response = error(405, "method_not_allowed", f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as refusal:
                return error(refusal.status, refusal.code, refusal.detail, **refusal.extra)
            except RequestDataTooBig:
                return _too_large()
            except TransitionNotAllowed as exc:
                return error(409, "conflict", str(exc))
            except services.InvalidPayload as exc:
                return error(422, "invalid_payload", str(exc), problems=exc.errors)
            except services.IdempotencyConflict as exc:
                return error(422, "idempotency_conflict", str(exc))
            except ObjectDoesNotExist:
                return error(404, "not_found", "no such object")

        return wrapper

    return decorate


def _too_large() -> JsonResponse:
    limit = settings.HMS_MAX_BODY_BYTES
    return error(413, "body_too_large", f"the request body is over {limit} bytes (1 MiB)")


def json_body(request: HttpRequest, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, or an ApiError saying what is wrong with it."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.HMS_MAX_BODY_BYTES:
        raise RequestDataTooBig()
    raw = request.body
    if len(raw) > settings.HMS_MAX_BODY_BYTES:
        raise RequestDataTooBig()
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_request", "the request body is empty; send a JSON object")
        return {}
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "malformed_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = False, default=None):
    value = body.get(name, default)
    if value is None and required:
        raise ApiError(400, "invalid_request", f"'{name}' is required")
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
        raise ApiError(400, "invalid_request", f"'{name}' must be a JSON {_json_type(kind)}")
    return value


def _json_type(kind: type) -> str:
    return {dict: "object", str: "string", list: "array", bool: "boolean"}.get(kind, kind.__name__)


# --- Endpoints -----------------------------------------------------------------------------


@api_view("POST")
def start(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    key = _field(body, "workflowId", str, required=True)
    payload = _field(body, "payload", dict, default={})
    token = authenticate(request, required=False)
    definition = selectors.latest_definition(key)
    if token is None and not (definition and definition.public):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer TOKEN")
    if definition is None:
        raise ApiError(404, "unknown_workflow", f"no workflow '{key}' is published")
    if token and not token.allows(ApiToken.Scope.START, key):
        raise ApiError(403, "forbidden", f"this token may not start '{key}'")
    instance, created = services.start_instance(
        definition=definition,
        payload=payload,
        idempotency_key=_idempotency_key(request, token),
        started_by=f"token:{token.name}" if token else "public",
    )
    answer = {
        "instanceId": str(instance.uuid),
        "caseNumber": instance.case_number,
        "status": instance.status,
        "trackerUrl": instance.tracker_url,
    }
    return JsonResponse(answer, status=201 if created else 200)


def _idempotency_key(request: HttpRequest, token: ApiToken | None) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise ApiError(400, "invalid_request", "Idempotency-Key is longer than 255 characters")
    return f"{token.pk if token else 'public'}:{key}"


def _readable_instance(request: HttpRequest, instance_id: str, scope: str) -> WorkflowInstance:
    instance = selectors.instance_by_uuid(instance_id)
    anonymous_read = scope == ApiToken.Scope.START and instance and instance.pinned.public
    token = authenticate(request, required=not anonymous_read)
    if instance is None:
        raise ApiError(404, "not_found", f"no instance '{instance_id}'")
    if token and not token.allows(scope, instance.pinned.key):
        raise ApiError(403, "forbidden", f"this token may not {scope} this instance")
    return instance


@api_view("GET")
def status(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _readable_instance(request, instance_id, ApiToken.Scope.START)
    return JsonResponse(instance_status(instance))


@api_view("POST")
def cancel(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _readable_instance(request, instance_id, ApiToken.Scope.OPERATE)
    reason = _field(json_body(request, required=False), "reason", str, default="")
    actor = _actor(request)
    instance = services.cancel_instance(instance_id=instance.pk, reason=reason, actor=actor)
    return JsonResponse(instance_status(instance))


@api_view("POST")
def retry(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _readable_instance(request, instance_id, ApiToken.Scope.OPERATE)
    json_body(request, required=False)
    instance = services.retry_instance(instance_id=instance.pk, actor=_actor(request))
    return JsonResponse(instance_status(instance))


@api_view("POST")
def complete_task(request: HttpRequest, task_id: str) -> JsonResponse:
    run = _task(task_id)
    actor = authorize_callback(request, run)
    body = json_body(request)
    result = _field(body, "result", str, required=True).strip()
    data = _field(body, "data", dict, default={})
    if not result or len(result) > RESULT_MAX:
        raise ApiError(400, "invalid_request", f"'result' must be 1 to {RESULT_MAX} characters")
    instance = services.complete_task(run_id=run.pk, result=result, data=data, actor=actor)
    return JsonResponse(instance_status(instance))


def _task(task_id: str) -> StepRun:
    from uuid import UUID

    try:
        return StepRun.objects.select_related("instance").get(pk=UUID(task_id))
    except (ValueError, StepRun.DoesNotExist):
        raise ApiError(404, "not_found", f"no task '{task_id}'") from None


def _actor(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"token:{token.name}" if token else ""


@api_view("GET")
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(OPENAPI)


def not_found(request: HttpRequest, exception=None) -> JsonResponse:
    """404 for unknown paths under /api/ (hms_site.urls routes them here)."""
    return error(404, "not_found", f"no endpoint {request.path}")
