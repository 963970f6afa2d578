"""The one way to change a history row: blank its free text for retention (docs/history.md).

Events are append-only (the ORM refuses, and on PostgreSQL a trigger refuses, any UPDATE or
DELETE). Personal data past its retention must still go, so this module may overwrite the
free-text fields of events (`actor`, `detail`) and nothing else: the type, step, result,
times and links to the instance and run stay, so statistics and the shape of the history
survive. It never deletes an event.
"""

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
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
    with _redacting():
        return Event.objects.filter(instance_id__in=ids)._redact(**changes)


def redact_details(details: Mapping[int, dict[str, Any]]) -> int:
    """Give each named event (by id) a new `detail` (the purge's: free text marked removed,
    the rest kept); returns how many events were changed."""
    if not details:
        return 0
    with _redacting():
        return sum(Event.objects.filter(pk=pk)._redact(detail=d) for pk, d in details.items())


@contextmanager
def _redacting():
    """One transaction in which, on PostgreSQL, the trigger lets UPDATEs of actor/detail by
    (a transaction-local setting, switched off again before the transaction ends)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hms.redacting', 'on', true)")
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('hms.redacting', 'off', true)")
