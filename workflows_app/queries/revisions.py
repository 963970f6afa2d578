"""What a conditional poll needs to answer 304: one indexed query (docs/api.md, "ETag").

The instance's `revision` (bumped by every change, runtime/guards.py), its status and
definition, and, when the caller sent a token, that token's row read in the same statement
(`token_columns`), so a revoked token is refused at once and the poll still costs one query.
The status endpoint reads the token the same way, joined to its read of the runs.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Subquery

from ..models import ApiToken, WorkflowInstance

TOKEN_FIELDS = ("pk", "name", "scopes", "workflows", "revoked_at")


@dataclass(frozen=True, slots=True)
class PollState:
    """An instance as a poll sees it, and the caller's live token (None: absent or revoked)."""

    revision: int
    status: str
    deadline_at: datetime | None
    definition_id: int
    token: ApiToken | None


def token_columns(token_hash: str) -> dict[str, Subquery]:
    """Annotations reading the token with `token_hash` (unique index) into any query."""
    row = ApiToken.objects.filter(key_hash=token_hash)
    return {f"token_{name}": Subquery(row.values(name)[:1]) for name in TOKEN_FIELDS}


def token_from(values: dict[str, Any] | Any) -> ApiToken | None:
    """The token read by `token_columns` (from a values() dict or an annotated object)."""
    get = values.get if isinstance(values, dict) else lambda key: getattr(values, key, None)
    if get("token_pk") is None:
        return None
    return ApiToken(**{name: get(f"token_{name}") for name in TOKEN_FIELDS})


def poll_state(key: UUID, *, token_hash: str | None) -> PollState | None:
    """The instance with public id `key`, and the live token with `token_hash`; one query."""
    rows = WorkflowInstance.objects.filter(uuid=key)
    if token_hash is not None:
        rows = rows.annotate(**token_columns(token_hash))
    row = rows.values(
        "revision", "status", "deadline_at", "definition_id", *rows.query.annotations
    ).first()
    if row is None:
        return None
    token = token_from(row)
    live = token if token is not None and token.revoked_at is None else None
    return PollState(row["revision"], row["status"], row["deadline_at"], row["definition_id"], live)
