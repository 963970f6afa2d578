"""Who may call in: API tokens, signed callbacks already seen, out-of-office delegations."""

import hashlib
import secrets
import unicodedata

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


def username_key(username: str) -> str:
    """The one form a username is compared and counted in: Unicode NFKC (as Django's sign-in
    form reads it, so full-width letters are the plain ones), case-folded, stripped."""
    return unicodedata.normalize("NFKC", username).casefold().strip()


class ApiToken(models.Model):
    """A bearer token for the API. Only its SHA-256 is stored; the token is shown once."""

    class Scope(models.TextChoices):
        START = "start", _("Start instances and read their status")
        TASKS = "tasks", _("Answer automated steps (services' callbacks)")
        DECIDE = "decide", _("Decide human tasks (as the person it acts for, if any)")
        OPERATE = "operate", _("Cancel and retry instances")
        RESPOND = "respond", _("Answer requests to the applicant and send documents (portals)")
        METRICS = "metrics", _("Read monitoring detail (/healthz checks)")

    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, help_text=_("Empty means every scope."))
    workflows = models.JSONField(
        default=list, blank=True, help_text=_("Workflow keys this token may use; empty means all.")
    )
    # A token bound to a person decides human tasks as that person, with their checks (group,
    # claims, separation of duties, the step's outcomes); unbound, it decides as itself.
    acting_for = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Decisions made with this token are this person's, with their checks."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, name: str, **fields) -> tuple["ApiToken", str]:
        """Create a token; return it with the raw secret, which is never stored."""
        raw = "hms_" + secrets.token_urlsafe(32)
        return cls.objects.create(name=name, key_hash=cls.hash(raw), **fields), raw

    def allows(self, scope: str, workflow_key: str | None = None) -> bool:
        if self.scopes and scope not in self.scopes:
            return False
        return not (self.workflows and workflow_key and workflow_key not in self.workflows)


class SeenWebhook(models.Model):
    """webhook-ids of signed callbacks already accepted, so a replay is refused."""

    message_id = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return self.message_id


class Delegation(models.Model):
    """Out of office: new tasks for `user` go to `deputy` between the two dates (inclusive)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    deputy = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_on = models.DateField()
    ends_on = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="delegation_dates_ordered"
            ),
            models.CheckConstraint(condition=~Q(user=F("deputy")), name="delegation_not_to_self"),
        ]
        indexes = [
            models.Index(fields=["user", "starts_on", "ends_on"], name="delegation_user_idx")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.deputy} ({self.starts_on}–{self.ends_on})"
