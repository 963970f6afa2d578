"""What a conditional poll needs to answer 304: one indexed query (docs/api.md, "ETag").

The instance's `revision` (bumped by every change, runtime/guards.py), its status and
definition, and, when the caller sent a token, that token's row read in the same statement
(`token_columns`), so a revoked token is refused at once and the poll still costs one query.
The status endpoint reads the token the same way, joined to its read of the runs.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.db import connection
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
    """The instance with public id `key`, and the live token with `token_hash`; one query.

    Written as SQL once (`_poll_sql`), not built by the ORM per request: on this path,
    building and compiling the query cost several times what running it does
    (docs/BENCHMARKS.md, section 5), and this is the path every unchanged poll takes.
    """
    uuid = WorkflowInstance._meta.get_field("uuid").get_db_prep_value(key, connection)
    with connection.cursor() as cursor:
        cursor.execute(_poll_sql(connection.vendor), [token_hash or "", uuid])
        row = cursor.fetchone()
    if row is None:
        return None
    revision, status, deadline_at, definition_id, *token_row = row
    token = None
    if token_row[0] is not None and token_row[-1] is None:  # known, and not revoked
        pk, name, scopes, workflows, _ = token_row
        token = ApiToken(pk=pk, name=name, scopes=_json(scopes), workflows=_json(workflows))
    return PollState(revision, status, deadline_at, definition_id, token)


@lru_cache(maxsize=4)
def _poll_sql(vendor: str) -> str:
    instance, token = WorkflowInstance._meta.db_table, ApiToken._meta.db_table
    return (
        "SELECT i.revision, i.status, i.deadline_at, i.definition_id, "
        "t.id, t.name, t.scopes, t.workflows, t.revoked_at "
        f"FROM {instance} i LEFT JOIN {token} t ON t.key_hash = %s "
        "WHERE i.uuid = %s"
    )


def _json(value: Any) -> Any:
    """A JSON column as read by a plain cursor: text on SQLite, decoded or text on PostgreSQL."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value
