"""Documents of an application: files the applicant (or a portal for them) sent.

The file lives in the `documents` storage (STORAGES in settings: a folder under var/ by
default, any Django storage backend by setting) under a path made of two random UUIDs; it is
only ever served by views that check who asks (docs/api.md, documents).
"""

import uuid

from django.core.files.storage import storages
from django.db import models
from django.db.models import Q

from .instances import WorkflowInstance


def document_storage():
    """The storage documents are kept in (STORAGES['documents'], looked up at each use)."""
    return storages["documents"]


class CaseDocument(models.Model):
    """One uploaded file of one instance; its UUID is the API's documentId."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="documents"
    )
    step = models.CharField(max_length=64, blank=True, help_text="The step it was sent for.")
    name = models.CharField(max_length=200, help_text="The file name as the uploader gave it.")
    content_type = models.CharField(max_length=100, help_text="Judged from the content.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    path = models.CharField(
        max_length=200, help_text="Where the file is in the documents storage (two UUIDs)."
    )
    uploaded_by = models.CharField(max_length=150, help_text="applicant, or token:NAME")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="document_not_empty"),
        ]
        indexes = [models.Index(fields=["instance", "created_at"], name="document_instance_idx")]

    def __str__(self) -> str:
        return self.name

    def open(self):
        """The stored file, opened for reading."""
        return document_storage().open(self.path, "rb")
