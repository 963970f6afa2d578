"""What a conditional poll needs to answer 304: one indexed query (docs/api.md, "ETag").

The instance's `revision` (bumped by every change, runtime/guards.py), its status and
definition, and, when the caller sent a token, that token's scopes read in the same
statement, so a revoked token is refused at once and the poll still costs one query.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Subquery

from ..models import ApiToken, WorkflowInstance


@dataclass(frozen=True, slots=True)
class PollState:
    """An instance as a poll sees it, and the caller's token (None: absent or revoked)."""

    revision: int
    status: str
    deadline_at: datetime | None
    definition_id: int
    token: ApiToken | None


def poll_state(key: UUID, *, token_hash: str | None) -> PollState | None:
    """The instance with public id `key`, and the live token with `token_hash`; one query."""
    rows = WorkflowInstance.objects.filter(uuid=key)
    fields = ["revision", "status", "deadline_at", "definition_id"]
    if token_hash is not None:
        live = ApiToken.objects.filter(key_hash=token_hash, revoked_at=None)
        rows = rows.annotate(
            token_pk=Subquery(live.values("pk")[:1]),
            token_scopes=Subquery(live.values("scopes")[:1]),
            token_workflows=Subquery(live.values("workflows")[:1]),
        )
        fields += ["token_pk", "token_scopes", "token_workflows"]
    row = rows.values(*fields).first()
    if row is None:
        return None
    token = None
    if row.get("token_pk") is not None:
        token = ApiToken(
            pk=row["token_pk"], scopes=row["token_scopes"], workflows=row["token_workflows"]
        )
    return PollState(
        row["revision"], row["status"], row["deadline_at"], row["definition_id"], token
    )
