"""Who is calling the API: bearer tokens, and Standard Webhooks signatures on callbacks."""

from typing import Any

from django.http import HttpRequest

from .models import ApiToken


class ApiError(Exception):
    """A refusal with its HTTP status and error code; views.api turns it into JSON."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


def authenticate(request: HttpRequest, *, required: bool = True) -> ApiToken | None:
    """The request's live API token; 401 when one is required and missing, wrong or revoked."""
    header = request.headers.get("Authorization", "")
    if not header:
        if required:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer TOKEN")
        return None
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer TOKEN'")
    token = ApiToken.objects.filter(key_hash=ApiToken.hash(raw.strip())).first()
    if token is None:
        raise ApiError(401, "unauthorized", "this token is not known")
    if token.revoked_at:
        raise ApiError(401, "unauthorized", "this token has been revoked")
    request.api_token = token
    return token


def authorize_callback(request: HttpRequest, run) -> str:
    """Who completes task `run`: a token with the tasks scope, or its service's signature."""
    if "webhook-signature" in request.headers and "Authorization" not in request.headers:
        from .callbacks import verify_signed_callback

        return verify_signed_callback(request, run)
    token = authenticate(request)
    if not token.allows(ApiToken.Scope.TASKS, run.instance.pinned.key):
        raise ApiError(403, "forbidden", "this token may not complete tasks")
    return f"token:{token.name}"
