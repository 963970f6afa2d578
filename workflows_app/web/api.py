"""The JSON API (docs/api.md): parse, authorise, call a service or selector, serialize.

Every answer is JSON, errors included ({"error": CODE, "detail": TEXT}); exceptions are
mapped to statuses in one place, `api_view`.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from .. import runtime
from ..engine import InvalidAnswer, TransitionNotAllowed
from ..models import ApiToken, Status, StepRun, WorkflowInstance
from ..queries import catalog, progress, revisions
from . import rendered
from .answers import decide, read_answer
from .api_input import field, json_body
from .auth import (
    ApiError,
    authenticate,
    authorize_callback,
    bearer_secret,
    is_signed_callback,
    require_scope,
)
from .conditional import known_status, status_etag, status_response, status_state
from .files import download, read_upload
from .openapi import OPENAPI
from .ratelimit import client_ip
from .serializers import document_json, instance_status, without_people
from .start_input import check_anonymous_start, idempotency_key, start_language
from .throttle import PUBLIC_STARTS
from .unavailable import database_unavailable, log_unavailable, unavailable_response
from .uploads import accepts_uploads

log = logging.getLogger(__name__)


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
            except Exception as exc:  # noqa: BLE001 - every failure answers JSON
                return _refusal(request, exc)

        wrapper.allowed_methods = methods
        return wrapper

    return decorate


def _refusal(request: HttpRequest, exc: Exception) -> JsonResponse:
    """The JSON answer for an exception raised by a view."""
    match exc:
        case ApiError() if "retry_after" in exc.extra:
            extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
            response = error(exc.status, exc.code, exc.detail, **extra)
            response["Retry-After"] = str(exc.extra["retry_after"])
            return response
        case ApiError():
            return error(exc.status, exc.code, exc.detail, **exc.extra)
        case RequestDataTooBig():
            limit = settings.HMS_MAX_BODY_BYTES
            return error(413, "body_too_large", f"the request body is over {limit} bytes (1 MiB)")
        case TransitionNotAllowed():
            return error(409, "conflict", str(exc))
        case runtime.NotAllowed():
            return error(403, "forbidden", str(exc))
        case runtime.InvalidPayload():
            return error(422, "invalid_payload", str(exc), problems=exc.errors)
        case runtime.IdempotencyConflict():
            return error(422, "idempotency_conflict", str(exc))
        case runtime.InvalidDecision():
            return error(400, "invalid_request", f"'{exc.field}': {exc}", field=exc.field)
        case runtime.DocumentRefused(too_large=True):
            return error(413, "body_too_large", str(exc))
        case runtime.DocumentRefused():
            return error(415, "unsupported_media_type", str(exc))
        case InvalidAnswer():
            problems = [{"field": k or None, "message": v} for k, v in exc.problems.items()]
            return error(422, "invalid_answer", str(exc), problems=problems)
        case ObjectDoesNotExist():
            return error(404, "not_found", "no such object")
    if database_unavailable(exc):  # not a fault of ours: 503 with Retry-After
        log_unavailable(request, exc)
        return unavailable_response(request)
    log.exception("API %s %s failed", request.method, request.path, exc_info=exc)
    return error(500, "server_error", "something went wrong on our side; it has been logged")


# --- Endpoints -----------------------------------------------------------------------------


@api_view("POST")
def start(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    key = field(body, "workflowId", str, required=True)
    payload = field(body, "payload", dict, default={})
    language = start_language(body)
    sent, bearer = bearer_secret(request)
    token_hash = ApiToken.hash(bearer) if bearer else None
    definition, found = catalog.latest_for_start(key, token_hash=token_hash)
    # The token's row came with the version (one query); without a version, look it up.
    read = {"found": found} if token_hash and definition is not None else {}
    token = authenticate(request, required=False, **read)
    if token is None and not (definition and definition.public):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer TOKEN")
    if definition is None:
        raise ApiError(404, "unknown_workflow", f"no workflow '{key}' is published")
    if token:
        require_scope(token, ApiToken.Scope.START, key)
    else:
        check_anonymous_start(request, payload)
    instance, created = runtime.start_instance(
        definition=definition,
        payload=payload,
        idempotency_key=idempotency_key(request, token),
        started_by=f"token:{token.name}" if token else "public",
        language=language,
    )
    if created and token is None:
        PUBLIC_STARTS.count(client_ip(request))  # refused and repeated starts do not count
    answer = {
        "instanceId": str(instance.uuid),
        "caseNumber": instance.case_number,
        # A new instance answers as its start made it, `running` (docs/api.md), even when
        # python steps run in this request have moved it on; the status endpoint says where
        # it is now. A repeated Idempotency-Key answers with the instance as it is.
        "status": Status.RUNNING if created else instance.status,
        "trackerUrl": instance.tracker_url,
    }
    return JsonResponse(answer, status=201 if created else 200)


def _instance(request: HttpRequest, instance_id: str, scope: str) -> WorkflowInstance:
    """The instance, once the caller may `scope` it (anyone may read a public one)."""
    instance = progress.instance_by_uuid(instance_id)
    _check_access(request, instance, instance_id, scope)
    return instance


def _check_access(
    request, instance: WorkflowInstance | None, instance_id: str, scope: str, **found
):
    """401/403 unless the caller may `scope` the instance; 404 when there is none. `found`:
    the header's token as the caller already read it (auth.authenticate)."""
    anonymous_read = scope == ApiToken.Scope.START and instance and instance.pinned.public
    token = authenticate(request, required=not anonymous_read, **found)
    if instance is None:
        raise ApiError(404, "not_found", f"no instance '{instance_id}'")
    if token:
        require_scope(token, scope, instance.pinned.key)


@api_view("GET")
def status(request: HttpRequest, instance_id: str) -> HttpResponse:
    sent, bearer = bearer_secret(request)
    key = progress.public_id(instance_id)
    state = status_state(key, bearer) if (not sent or bearer) else None
    if state and (known := known_status(request, key, state, bearer)):
        return known  # 304, or the document already built for this ETag: one query in all
    if state and (bearer is None or state.token):
        # The revision query read the caller's live token already: no join for it here.
        instance, runs = progress.instance_with_runs(key)
        found = {"found": state.token} if bearer else {}
    else:
        token_hash = ApiToken.hash(bearer) if bearer else None
        instance, runs = progress.instance_with_runs(instance_id, token_hash=token_hash)
        found = {"found": revisions.token_from(runs[0])} if token_hash and runs else {}
    _check_access(request, instance, instance_id, ApiToken.Scope.START, **found)
    private = getattr(request, "api_token", None) is not None
    document = instance_status(instance, runs, private=private)
    if not private:
        document = without_people(document)
    tag = status_etag(instance.revision, instance.status, instance.deadline_at, private=private)
    body = JsonResponse(document).content
    if instance.is_finished or instance.deadline_at is None:
        rendered.keep(instance.uuid, tag, body)  # not while a deadline's seconds run down
    return status_response(body, tag)


@api_view("POST")
def cancel(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _instance(request, instance_id, ApiToken.Scope.OPERATE)
    reason = field(json_body(request, required=False), "reason", str, default="")
    actor = _actor(request)
    instance = runtime.cancel_instance(instance_id=instance.pk, reason=reason, actor=actor)
    return JsonResponse(instance_status(instance))


@api_view("POST")
def retry(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _instance(request, instance_id, ApiToken.Scope.OPERATE)
    json_body(request, required=False)
    instance = runtime.retry_instance(instance_id=instance.pk, actor=_actor(request))
    return JsonResponse(instance_status(instance))


@api_view("POST")
def complete_task(request: HttpRequest, task_id: str) -> JsonResponse:
    # Credentials first: without any, an unknown task is 401 like everything non-public.
    token = None if is_signed_callback(request) else authenticate(request)
    run = _task(task_id)
    if runtime.is_request(run):
        return _answer_request(request, run, token)
    if run.is_for_a_person and token is not None:
        return JsonResponse(instance_status(decide(run, token, read_answer(request, run))))
    actor = authorize_callback(request, run, token)
    answer = read_answer(request, run)
    instance = runtime.complete_task(run_id=run.pk, actor=actor, **answer.fields())
    return JsonResponse(instance_status(instance))


def _answer_request(request: HttpRequest, run: StepRun, token: ApiToken | None) -> JsonResponse:
    """A portal answers a request to the applicant for them: scope `respond`, result
    `submitted`, `data` as the form asks (files as documentIds); 409 once answered."""
    if token is None:
        raise ApiError(401, "unauthorized", "answer a request to the applicant with a token")
    require_scope(token, ApiToken.Scope.RESPOND, run.instance.pinned.key)
    body = json_body(request)
    result = field(body, "result", str, required=True).strip()
    data = field(body, "data", dict, default={})
    if result != runtime.SUBMITTED:
        detail = f"a request to the applicant is answered with result 'submitted', not '{result}'"
        raise InvalidAnswer({"result": detail})
    instance = runtime.answer_request(run=run, data=data, actor=f"token:{token.name}")
    return JsonResponse(instance_status(instance))


@api_view("POST")
@accepts_uploads
def upload_document(request: HttpRequest, instance_id: str) -> JsonResponse:
    instance = _instance(request, instance_id, ApiToken.Scope.RESPOND)
    upload, step = read_upload(request, instance)
    document = runtime.add_document(
        instance=instance,
        upload=upload,
        step=step,
        accept=catalog.accepted_types(instance, step),
        uploaded_by=_actor(request),
    )
    return JsonResponse(document_json(document), status=201)


@api_view("GET")
def get_document(request: HttpRequest, document_id: str):
    token = authenticate(request)  # never anonymous, even for a public workflow
    document = progress.document_by_id(document_id)
    if document is None:
        raise ApiError(404, "not_found", f"no document '{document_id}'")
    require_scope(token, ApiToken.Scope.START, document.instance.pinned.key)
    return download(document)


def _task(task_id: str) -> StepRun:
    try:
        return StepRun.objects.select_related("instance", "claimed_by").get(pk=UUID(task_id))
    except (ValueError, StepRun.DoesNotExist):
        raise ApiError(404, "not_found", f"no task '{task_id}'") from None


def _actor(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"token:{token.name}" if token else ""


@api_view("GET")
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(OPENAPI)


# --- Answers Django gives before or around a view ------------------------------------------


def not_found(request: HttpRequest, exception=None) -> JsonResponse:
    """404 for unknown paths under /api/ (web/urls.py routes them here)."""
    return error(404, "not_found", f"no endpoint {request.path}")


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """handler400: JSON under /api/ (a bad Host header, ...), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(400, "bad_request", "the request is malformed (check the Host header)")
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error(500, "server_error", "something went wrong on our side; it has been logged")
    return defaults.server_error(request)
