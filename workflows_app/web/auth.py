"""Who is calling the API: bearer tokens, and Standard Webhooks signatures on callbacks."""

from typing import Any

from django.http import HttpRequest

from ..models import ApiToken
from ..runtime.callbacks import CallbackRefused, verify_signed_callback


class ApiError(Exception):
    """A refusal with its HTTP status and error code; views.api turns it into JSON."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


_LOOK_UP = object()


def authenticate(
    request: HttpRequest, *, required: bool = True, found: ApiToken | None | object = _LOOK_UP
) -> ApiToken | None:
    """The request's live API token; 401 when one is required and missing, wrong or revoked.
    `found`: the row of the header's token, already read by the caller (or None: no such
    token), so no query is made here."""
    header = request.headers.get("Authorization", "")
    if not header:
        if required:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer TOKEN")
        return None
    raw = _bearer(header)
    if raw is None:
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer TOKEN'")
    if found is _LOOK_UP:
        found = ApiToken.objects.filter(key_hash=ApiToken.hash(raw)).first()
    token = found
    if token is None:
        raise ApiError(401, "unauthorized", "this token is not known")
    if token.revoked_at:
        raise ApiError(401, "unauthorized", "this token has been revoked")
    request.api_token = token
    return token


def bearer_token(request: HttpRequest) -> ApiToken | None:
    """The request's live token, or None (no header, a malformed one, unknown or revoked)."""
    raw = _bearer(request.headers.get("Authorization", ""))
    if raw is None:
        return None
    return ApiToken.objects.filter(key_hash=ApiToken.hash(raw), revoked_at=None).first()


def bearer_secret(request: HttpRequest) -> tuple[bool, str | None]:
    """(whether an Authorization header was sent, its bearer secret or None if malformed)."""
    header = request.headers.get("Authorization", "")
    return bool(header), _bearer(header) if header else None


def _bearer(header: str) -> str | None:
    scheme, _, raw = header.partition(" ")
    return raw.strip() if scheme.lower() == "bearer" and raw.strip() else None


def require_scope(token: ApiToken, scope: str, workflow_key: str) -> None:
    """403 unless `token` has `scope` for workflow `workflow_key`."""
    if not token.allows(scope, workflow_key):
        raise ApiError(403, "forbidden", f"this token may not {_VERBS[scope]} '{workflow_key}'")


_VERBS = {
    ApiToken.Scope.START: "start or read instances of",
    ApiToken.Scope.TASKS: "answer automated steps of",
    ApiToken.Scope.DECIDE: "decide human tasks (scope decide) of",
    ApiToken.Scope.OPERATE: "cancel or retry instances of",
    ApiToken.Scope.RESPOND: "answer requests to the applicant or send documents for",
    ApiToken.Scope.METRICS: "read monitoring detail of",
}


def is_signed_callback(request: HttpRequest) -> bool:
    """Whether the request authenticates by a Standard Webhooks signature, not a token."""
    return "webhook-signature" in request.headers and "Authorization" not in request.headers


def authorize_callback(request: HttpRequest, run, token: ApiToken | None) -> str:
    """Who answers the automated step `run`: `token` with the tasks scope, or its service's
    signature."""
    if token is None:
        try:
            return verify_signed_callback(run=run, body=request.body, headers=request.headers)
        except CallbackRefused as refused:
            raise ApiError(401, refused.code, refused.detail) from None
    require_scope(token, ApiToken.Scope.TASKS, run.instance.pinned.key)
    return f"token:{token.name}"
