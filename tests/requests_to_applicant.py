"""Workflows that ask the applicant for a document, and the files they send (shared by the
request tests and the browser tests)."""

import re
from unittest.mock import patch

from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import make_definition, make_service
from workflows_app import tasks
from workflows_app.models import WorkflowDefinition

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
SITE_PLAN_FORM = [
    {"name": "sitePlan", "label": "Site plan", "type": "file", "required": True, "maxSize": "1MB"},
    {
        "name": "note",
        "label": {"en": "Anything we should know?", "es": "¿Algo más?"},
        "type": "textarea",
    },
]
PERMIT_WITH_REQUEST = {
    "id": "permit-with-plan",
    "name": "Building permit",
    "deadline": "30d",
    "steps": [
        {"id": "check", "service": "okSvc", "title": "We check your application"},
        {
            "id": "upload-site-plan",
            "service": "sitePlanSvc",
            "title": "Upload the site plan",
            "description": "A drawing of the plot with the building on it.",
            "timeout": "14d",
            "onTimeout": "reject",
        },
        {"id": "review", "service": "reviewSvc", "title": "A reviewer decides"},
    ],
}


def request_workflow(**overrides) -> WorkflowDefinition:
    """check (python) -> upload-site-plan (applicant) -> review (a person)."""
    make_service("okSvc")
    make_service("reviewSvc", "human")
    make_service("sitePlanSvc", "applicant", form=SITE_PLAN_FORM)
    return make_definition(PERMIT_WITH_REQUEST, **overrides)


def pdf(name: str = "site-plan.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def emailed_link(run) -> str:
    """Send the request's email as the worker would; the link path it carries."""
    mail.outbox.clear()
    assert tasks.send_request_email(str(run.pk)) == 1
    return re.search(r"https?://[^/\s]+(/track/\S+/respond/\S+/)", mail.outbox[-1].body).group(1)


def enqueued_requests():
    """Patch the queue; the run ids of request emails enqueued (read the list after commit)."""
    return patch("workflows_app.runtime.queue.async_task")
