"""Query shapes compiled once per process, then run with new parameters.

On the paths every citizen and portal poll takes, building and compiling a Django query costs
several times what running it does (docs/BENCHMARKS.md, section 5: `as_sql`, `get_select`
and `get_order_by` against a fraction of a millisecond in the database). A `Prepared` query
is an ordinary queryset, written with the ORM as anywhere else, built once per database
connection's vendor with sample arguments and compiled once; each call then sends the same
SQL with the new arguments and turns the rows into model objects (or values() dicts) through
the queryset's own iterable class (converters, `select_related` objects, fetch modes), as the
queryset would.

Only the SQL text and the compiler's column lists are shared; each call uses its own thread's
connection. `prepare` turns the call's arguments into the query's parameters as the ORM does
(`get_db_prep_value`); at compile time the sample's parameters must equal what the ORM
produced, and the queryset must need nothing but its query and iterable class (no
prefetching, known related objects or hints); otherwise the ORM runs it on every call, with a
warning logged once, so a prepared query cannot silently drift from its queryset.
"""

import copy
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler

log = logging.getLogger(__name__)
_ORM = "orm"  # a shape the ORM runs on every call (see the module docstring)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    compiler: SQLCompiler
    queryset: QuerySet


class Prepared:
    """`build(*args)` -> a queryset; `prepare(connection, *args)` -> its SQL parameters."""

    def __init__(
        self,
        build: Callable[..., QuerySet],
        *,
        prepare: Callable[..., Sequence[Any]],
        sample: tuple,
    ) -> None:
        self.build, self.prepare, self.sample = build, prepare, sample
        self._compiled: dict[str, _Compiled | str] = {}
        self._local = threading.local()

    def __call__(self, *args: Any) -> list[Model | dict]:
        """The queryset's objects (or its values() dicts) for these arguments, from the SQL
        compiled once."""
        compiled = self._compiled.get(connection.vendor) or self._compile()
        if compiled is _ORM:
            return list(self.build(*args))
        compiler = copy.copy(compiled.compiler)
        compiler.connection = connection  # this thread's, not the one it was compiled on
        params = tuple(self.prepare(connection, *args))
        compiler.as_sql = lambda *_, **__: (compiled.sql, params)
        converters = self._converters(compiled, compiler)
        compiler.get_converters = lambda _expressions: converters
        query = copy.copy(compiled.queryset.query)
        query.get_compiler = lambda *_, **__: compiler
        shape = compiled.queryset
        queryset = type(shape)(model=shape.model, query=query, using=shape.db)
        queryset._iterable_class, queryset._fields = shape._iterable_class, shape._fields
        return list(shape._iterable_class(queryset))

    def _converters(self, compiled: _Compiled, compiler: SQLCompiler) -> dict:
        """The columns' converters (from database values to Python's), worked out once per
        thread, so with this thread's connection, as Django would per query."""
        known = getattr(self._local, "converters", None)
        if known is None:
            known = self._local.converters = {}
        if compiled.sql not in known:
            columns = [column for column, *_ in compiler.select[0 : compiler.col_count]]
            known[compiled.sql] = compiler.get_converters(columns)
        return known[compiled.sql]

    def _compile(self) -> "_Compiled | str":
        queryset = self.build(*self.sample)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        expected = tuple(self.prepare(connection, *self.sample))
        if not _plain(queryset):
            log.warning("prepared query: %r prefetches or carries hints; the ORM runs it", sql)
            compiled = _ORM
        elif tuple(params) != expected:
            log.warning(
                "prepared query: the ORM's parameters %r are not %r; the ORM runs it",
                params,
                expected,
            )
            compiled = _ORM
        else:
            compiled = _Compiled(sql, compiler, queryset)
        self._compiled[connection.vendor] = compiled
        return compiled


def _plain(queryset: QuerySet) -> bool:
    """Whether a call can rebuild the queryset from its query and iterable class alone (no
    prefetching, known related objects, hints or fetch mode of its own)."""
    fresh = type(queryset)(model=queryset.model)
    return (
        not queryset._prefetch_related_lookups
        and not queryset._known_related_objects
        and not queryset._hints
        and getattr(queryset, "_fetch_mode", None) is getattr(fresh, "_fetch_mode", None)
    )
