"""Documents: a file checked (size, type told by its content), stored, and recorded.

A document is written to the `documents` storage and its row in the caller's transaction;
when that transaction does not commit, `discard` removes the files, so an upload that fails
leaves neither a row nor a file behind.
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

import filetype
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from ..definitions import DEFAULT_ACCEPT, format_size, parse_size
from ..engine import DocumentFacts, TransitionNotAllowed
from ..models import CaseDocument, Event, WorkflowInstance
from ..models.documents import document_storage
from .guards import add_event, touch

NAME_MAX = 200
_HEAD = 8192  # filetype reads no further than this
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


class DocumentRefused(Exception):
    """The file cannot be taken: `too_large` (API: 413), or its type is not allowed (415)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def max_upload() -> int:
    """The largest document accepted anywhere, in bytes (HMS_MAX_UPLOAD)."""
    return parse_size(settings.HMS_MAX_UPLOAD)


def judge(upload: UploadedFile, *, accept: Sequence[str], max_size: int | None) -> DocumentFacts:
    """The facts of an upload, or DocumentRefused: too large, or a type not in `accept`."""
    largest = min(max_size or max_upload(), max_upload())
    if upload.size is None or upload.size > largest:
        raise DocumentRefused(
            f"the file is {format_size(upload.size or 0)}; at most {format_size(largest)} is "
            "allowed",
            too_large=True,
        )
    if upload.size == 0:
        raise DocumentRefused("the file is empty")
    kind = type_of(upload)
    if kind not in accept:
        told = f"of type {kind}" if kind else "of a type we cannot accept"
        raise DocumentRefused(f"the file is {told}; send {either(accept)}")
    return DocumentFacts(type=kind, size=upload.size)


def either(kinds: Sequence[str]) -> str:
    """ "pdf, png or jpg"."""
    return " or ".join([", ".join(kinds[:-1]), kinds[-1]]) if len(kinds) > 1 else kinds[0]


def type_of(upload: UploadedFile) -> str:
    """The document type told by the first bytes of the file ("pdf", "png", ...), or ""."""
    upload.seek(0)
    head = upload.read(_HEAD)
    upload.seek(0)
    guess = filetype.guess(head)
    return guess.extension if guess else ""


def store(
    *,
    instance: WorkflowInstance,
    upload: UploadedFile,
    facts: DocumentFacts,
    step: str,
    uploaded_by: str,
) -> CaseDocument:
    """Write a judged upload and its row, in the caller's transaction (see `discard`)."""
    document = CaseDocument(
        instance=instance,
        step=step,
        name=clean_name(upload.name or ""),
        content_type=filetype.get_type(ext=facts.type).mime,
        size=facts.size,
        sha256=_sha256(upload),
        uploaded_by=uploaded_by,
    )
    # Saved first: a failure here leaves no row. A failure in the writes below removes the
    # file before it goes on; a row rolled back later has its file removed by `discard`.
    document.path = document_storage().save(f"{instance.uuid}/{document.pk}", upload)
    try:
        touch(instance.pk)  # documents show in the status answer: its ETag changes
        document.save(force_insert=True)
        add_event(
            instance,
            None,
            Event.Type.DOCUMENT_ADDED,
            step=step,
            actor=uploaded_by,
            document_id=str(document.pk),
            name=document.name,
        )
    except BaseException:
        discard([document])
        raise
    return document


def add_document(
    *,
    instance: WorkflowInstance,
    upload: UploadedFile,
    step: str,
    accept: Sequence[str],
    uploaded_by: str,
) -> CaseDocument:
    """A document sent on its own (the API): checked, stored and recorded, or nothing at all."""
    if instance.is_finished:
        raise TransitionNotAllowed(f"{instance.case_number} has ended ({instance.status})")
    facts = judge(upload, accept=accept or DEFAULT_ACCEPT, max_size=None)
    stored: list[CaseDocument] = []
    try:
        with transaction.atomic():
            stored.append(
                store(
                    instance=instance,
                    upload=upload,
                    facts=facts,
                    step=step,
                    uploaded_by=uploaded_by,
                )
            )
    except BaseException:
        discard(stored)
        raise
    return stored[0]


def discard(documents: Iterable[CaseDocument]) -> None:
    """Remove the files of documents whose rows were rolled back."""
    for document in documents:
        if document.path:
            document_storage().delete(document.path)


def facts_of(instance: WorkflowInstance) -> dict[str, DocumentFacts]:
    """The documents of an instance by id, as the answer rules need them (one query)."""
    rows = CaseDocument.objects.filter(instance=instance).values_list("pk", "content_type", "size")
    return {
        str(pk): DocumentFacts(type=_extension(content_type), size=size)
        for pk, content_type, size in rows
    }


def _extension(content_type: str) -> str:
    kind = filetype.get_type(mime=content_type)
    return kind.extension if kind else ""


def clean_name(name: str) -> str:
    """The uploader's file name without folders or control characters, at most 200 long."""
    base = re.split(r"[/\\]", name)[-1]
    text = _UNSAFE.sub("", unicodedata.normalize("NFC", base)).strip() or "document"
    if len(text) <= NAME_MAX:
        return text
    stem, dot, ext = text.rpartition(".")
    return (
        (stem[: NAME_MAX - len(ext) - 1] + dot + ext) if dot and len(ext) < 10 else text[:NAME_MAX]
    )


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()
