"""Reading API request bodies: one JSON object, checked before any of it is used.

Every refusal is an ApiError naming what is wrong (size, media type, JSON syntax with line and
column, depth, numbers too large for a float, characters that cannot be stored, a field of the
wrong type).
"""

import json
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from .auth import ApiError

MAX_DEPTH = 64


def json_body(request: HttpRequest, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, or an ApiError saying what is wrong with it."""
    raw = _read_body(request)
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_request", "the request body is empty; send a JSON object")
        return {}
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return body


def _read_body(request: HttpRequest) -> bytes:
    """The raw body; RequestDataTooBig before reading when Content-Length says it is too big."""
    limit = settings.HMS_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise RequestDataTooBig()
    raw = request.body
    # Content-Length may be absent (chunked uploads on ASGI): measure what was read too.
    if len(raw) > limit:
        raise RequestDataTooBig()
    return raw


def _parse_json(raw: bytes) -> Any:
    try:
        body = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_number
        )
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        detail = f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise ApiError(400, "malformed_json", detail, line=exc.lineno, column=exc.colno) from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise ApiError(400, "malformed_json", "a number in the body is too long") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", _too_deep()) from None
    if problem := _unstorable(body):
        raise ApiError(400, "malformed_json", problem)
    return body


def _refuse_constant(name: str) -> None:
    raise ApiError(400, "malformed_json", f"{name} is not valid JSON; send null or a string")


def _finite_number(text: str) -> float:
    """A JSON number as a float; one too large for a float (1e400) would become Infinity,
    which JSON cannot hold and the database refuses (a 500 on SQLite): refuse it here."""
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(
            400, "malformed_json", f"the number {text[:40]} is too large; send it as a string"
        )
    return value


def _too_deep() -> str:
    return f"the body is nested more than {MAX_DEPTH} levels deep"


def _unstorable(value: Any) -> str | None:
    """Why a parsed body cannot be stored (too deep, NUL, unpaired surrogate), or None."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return _too_deep()
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and not _storable_text(item):
            return (
                "the body contains a NUL character or an unpaired surrogate; they cannot be stored"
            )
    return None


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_MISSING = object()


def field(body: dict[str, Any], name: str, kind: type, *, required: bool = False, default=None):
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise ApiError(400, "invalid_request", f"'{name}' is required")
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ApiError(400, "invalid_request", f"'{name}' must be a JSON {_json_type(kind)}")
    return value


def _json_type(kind: type) -> str:
    return {dict: "object", str: "string", list: "array", bool: "boolean"}.get(kind, kind.__name__)
