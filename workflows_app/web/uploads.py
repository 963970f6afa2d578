"""How much of a request body is read: HMS_MAX_UPLOAD on the upload endpoints, 1 MiB elsewhere.

`UploadLimitMiddleware` runs before CSRF checks read a form: a body whose Content-Length is
over the view's limit is refused with 413 before any of it is read (JSON under /api/, plain
text elsewhere); an upload endpoint's multipart body is then read through a handler that
stops at the limit too, for bodies that come without a length.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

from ..definitions import format_size
from ..runtime.documents import max_upload

ENVELOPE = 64 * 1024  # multipart boundaries, headers and the other fields of an upload


def accepts_uploads(view: Callable) -> Callable:
    """Mark a view as an upload endpoint: it may read bodies up to HMS_MAX_UPLOAD."""
    view.accepts_uploads = True
    return view


class BodyTooLarge(Exception):
    """A body grew past the limit while it was read."""


class _StopAtLimit(FileUploadHandler):
    """Counts the file bytes of a multipart body and stops the read past the limit."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit, self.seen = limit, 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.seen += len(raw_data)
        if self.seen > self.limit:
            raise BodyTooLarge
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class UploadLimitMiddleware:
    """413 for a body over the view's limit, before CSRF or the view reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view, args, kwargs) -> HttpResponse | None:
        uploads = getattr(view, "accepts_uploads", False)
        limit = max_upload() + ENVELOPE if uploads else settings.HMS_MAX_BODY_BYTES
        if _declared_length(request) > limit:
            return too_large(request, limit)
        if not uploads or request.method != "POST":
            return None
        request.upload_handlers.insert(0, _StopAtLimit(request, limit))
        try:
            request.POST  # noqa: B018 - read the body here, where a refusal can be answered
        except BodyTooLarge:
            return too_large(request, limit)
        except MultiPartParserError as error:
            return _refused(
                request, 400, "malformed_body", f"the multipart body is malformed: {error}"
            )
        return None


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    """413, naming the limit."""
    if limit == settings.HMS_MAX_BODY_BYTES:
        detail = f"the request body is over {limit} bytes (1 MiB)"
    else:
        detail = f"the file is larger than {format_size(max_upload())}, the largest we accept"
    return _refused(request, 413, "body_too_large", detail)


def _refused(request: HttpRequest, status: int, code: str, detail: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": code, "detail": detail}, status=status)
    return HttpResponse(
        detail[:1].upper() + detail[1:] + ".\n",
        status=status,
        content_type="text/plain; charset=utf-8",
    )
