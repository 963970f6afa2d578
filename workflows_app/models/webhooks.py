"""Status webhooks: subscriptions (who wants to hear about instances) and the outbox of
deliveries, one row per instance change and subscription (docs/webhooks.md)."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .instances import WorkflowInstance


class Subscription(models.Model):
    """A URL told about every change of an instance (status, current steps, outcome)."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, help_text=_("Standard Webhooks secret: whsec_ followed by base64.")
    )
    events = models.JSONField(default=list, help_text=_('Event types, e.g. ["instance.updated"].'))
    workflows = models.JSONField(
        default=list, blank=True, help_text=_("Workflow keys; empty means every workflow.")
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str, workflow_key: str) -> bool:
        """Whether this subscription is told about `event_type` of workflow `workflow_key`."""
        if not self.active or event_type not in (self.events or []):
            return False
        return not self.workflows or workflow_key in self.workflows


class WebhookDelivery(models.Model):
    """One message to one subscription: written in the transaction of the change it reports,
    sent after commit, in order per (subscription, instance)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (gave up; send again to resume)")

    id = models.BigAutoField(primary_key=True)  # the order of an instance's messages
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    instance = models.ForeignKey(
        WorkflowInstance, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event_type = models.CharField(max_length=50)
    body = models.JSONField()
    state = models.CharField(max_length=20, choices=State, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A sender's claim on this instance's queue for this subscription: until it passes, no
    # other sender takes it; a sender killed mid-call leaves it to pass (the sweep re-drives).
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "failed"]),
                name="webhookdelivery_state_valid",
            )
        ]
        indexes = [
            models.Index(
                fields=["subscription", "instance", "id"],
                condition=~Q(state="delivered"),
                name="webhook_undelivered_idx",
            ),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="webhook_pending_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk} to {self.subscription_id}"
