"""Files in and out: an upload read from the API's multipart body, and a document's download
answer (the API, the task page and the applicant's link share it; docs/api.md, documents)."""

from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, HttpRequest

from ..models import CaseDocument, WorkflowInstance
from ..queries import catalog
from .auth import ApiError


def read_upload(request: HttpRequest, instance: WorkflowInstance) -> tuple[UploadedFile, str]:
    """The `file` and the optional `step` of a multipart/form-data upload."""
    if request.content_type != "multipart/form-data":
        raise ApiError(
            415, "unsupported_media_type", "send the document as multipart/form-data, field 'file'"
        )
    upload = request.FILES.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "'file' is required (a multipart file field)")
    step = request.POST.get("step", "").strip()
    if step and step not in catalog.spec_of(instance).step_ids:
        raise ApiError(400, "invalid_request", f"'step' names no step of this workflow: '{step}'")
    return upload, step


def download(document: CaseDocument) -> FileResponse:
    """The file, as an attachment (never shown inline), not cached by shared caches."""
    response = FileResponse(
        document.open(),
        as_attachment=True,
        filename=document.name,
        content_type=document.content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response
