"""The one way to change a history row: blank its free text for retention (docs/history.md).

Events are append-only (the ORM refuses, and on PostgreSQL a trigger refuses, any UPDATE or
DELETE). Personal data past its retention must still go, so this module may overwrite the
free-text fields of events (`actor`, `detail`) and nothing else: the type, step, result,
times and links to the instance and run stay, so statistics and the shape of the history
survive. It never deletes an event.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction

from ..models import Event

REDACTED: dict[str, Any] = {"actor": "", "detail": {"redacted": True}}


def redact_events(*, instance_ids: Iterable[int], fields: Mapping[str, Any] | None = None) -> int:
    """Overwrite the free text of every event of these instances (default: `actor` blanked,
    `detail` replaced by {"redacted": true}); returns how many events were redacted.

    Only `actor` and `detail` may be named; anything else raises HistoryIsAppendOnly.
    """
    changes = dict(REDACTED if fields is None else fields)
    ids = list(instance_ids)
    if not ids or not changes:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Transaction-local: the trigger lets this transaction's UPDATEs of actor/detail by.
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hms.redacting', 'on', true)")
        redacted = Event.objects.filter(instance_id__in=ids)._redact(**changes)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hms.redacting', 'off', true)")
    return redacted
