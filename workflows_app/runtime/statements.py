"""The runtime's hot writes, compiled once per shape and process: the guarded `UPDATE`s of
runs and instances, and the `INSERT`s of instances, runs and events.

Every step of every instance updates its run and its instance (runtime/guards.py) and opens
the next run. Written as `Model.objects.filter(...).update(...)` or `save()`, each statement
spends most of its time in Django building and compiling it (`add_q`, `build_filter`,
`as_sql`), while SQLite holds its write lock for the transaction (docs/BENCHMARKS.md). Here a
statement's SQL is compiled by Django once per *shape*: for an `UPDATE` the model, the
columns compared (and which are compared with NULL), the columns set and any expression set;
for an `INSERT` the model and whether its primary key is given. Each call then prepares its
values as Django does (`get_db_prep_value` for comparisons, `pre_save` and `get_db_prep_save`
for values written) and runs the SQL on this thread's connection.

A shape's plan is checked once against Django's own compilation of the same call (the same
parameters in the same places). A shape that does not match, a filter other than
`column=value`, and any shape past MAX_SHAPES go to the ORM unchanged, as does an `INSERT`
the ORM would do more for (save signals, a `save()` of the model's own, an expression).
"""

import copy
import logging
import threading
from typing import Any

from django.db import connection, transaction
from django.db.models import Expression, F, Model, signals
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

from ..models import Event, WorkflowInstance

log = logging.getLogger(__name__)

MAX_SHAPES = 256  # a caller whose shapes never repeat is sent to the ORM, not remembered
_ORM = "orm"  # a shape whose plan did not match Django's: the ORM sends it
_PLANS: dict[tuple, tuple[str, tuple] | str] = {}


class Add:
    """A change that adds `amount` to the column (`F(column) + amount`), the amount being a
    parameter of each call rather than part of the statement's shape."""

    def __init__(self, amount: int | float) -> None:
        self.amount = amount


class _Slot(Expression):
    """A value of one call (`kind` where, set or add, of column `name`): compiled as a
    placeholder whose parameter is the slot itself."""

    def __init__(self, kind: str, name: str, field) -> None:
        super().__init__(output_field=field)
        self.kind, self.name = kind, name

    def as_sql(self, compiler, connection):
        return "%s", [self]


def update(model: type[Model], where: dict[str, Any], changes: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**changes)`: the number of rows changed.
    A change may be `Add(amount)`: the column plus that amount."""
    key = (
        model,
        connection.vendor,
        tuple(sorted((name, value is None) for name, value in where.items())),
        tuple(
            (name, repr(value) if _is_expression(value) else isinstance(value, Add))
            for name, value in changes.items()
        ),
    )
    plan = _PLANS.get(key)
    if plan is None and not any("__" in name for name in where) and len(_PLANS) < MAX_SHAPES:
        plan = _plan(key, model, where, changes)
    if plan is None or plan == _ORM:
        return model._base_manager.filter(**where).update(**_as_orm(changes))
    sql, slots = plan
    params = [_value(slot, where, changes) if isinstance(slot, _Slot) else slot for slot in slots]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _compiled(model, where: dict, changes: dict) -> tuple[str, list]:
    query = model._base_manager.filter(**where).query.chain(UpdateQuery)
    query.add_update_values(changes)
    return query.get_compiler(connection=connection).as_sql()


def _plan(key: tuple, model, where: dict, changes: dict) -> tuple[str, tuple] | str:
    marked_where = {
        name: None if value is None else _Slot("where", name, _field(model, name))
        for name, value in where.items()
    }
    marked_changes = {name: _marked(model, name, value) for name, value in changes.items()}
    _, slots = _compiled(model, marked_where, marked_changes)
    sql, params = _compiled(model, where, _as_orm(changes))
    filled = [_value(s, where, changes) if isinstance(s, _Slot) else s for s in slots]
    if len(filled) == len(params) and all(map(_same, filled, params)):
        _PLANS[key] = (sql, tuple(slots))
    else:
        log.warning("statements: the plan of %r does not match Django's; the ORM sends it", key)
        _PLANS[key] = _ORM
    return _PLANS[key]


def _marked(model, name: str, value: Any) -> Any:
    if _is_expression(value):
        return value
    if isinstance(value, Add):
        return F(name) + _Slot("add", name, _field(model, name))
    return _Slot("set", name, _field(model, name))


def _as_orm(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes as the ORM takes them (`Add(n)` as `F(column) + n`)."""
    return {
        name: F(name) + value.amount if isinstance(value, Add) else value
        for name, value in changes.items()
    }


def _field(model, name: str):
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def _same(ours: Any, djangos: Any) -> bool:
    """Equal parameters; adapted JSON (psycopg's Jsonb) compares by the object it wraps."""
    if type(ours) is type(djangos) and hasattr(ours, "obj"):
        return ours.obj == djangos.obj
    return ours == djangos


def _value(slot: _Slot, where: dict, changes: dict) -> Any:
    """A slot's parameter for this call, prepared as Django prepares it."""
    field = slot.output_field
    if slot.kind == "where":
        value = where[slot.name]
        return field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)
    value = changes[slot.name]
    if slot.kind == "add":
        return field.get_db_prep_save(value.amount, connection=connection)
    if hasattr(value, "prepare_database_save"):
        value = value.prepare_database_save(field)
    return field.get_db_prep_save(value, connection=connection)


# --- INSERT ---------------------------------------------------------------------------------

# Models whose own save() adds nothing to a new row that the caller has not set: an event's
# only refuses updates; an instance's draws a case number when it has none.
_OWN_SAVE_ADDS_NOTHING = {
    Event: lambda obj: True,
    WorkflowInstance: lambda obj: bool(obj.case_number),
}
_INSERTS: dict[tuple, "_InsertPlan | None"] = {}


class _InsertPlan:
    """The INSERT of one model's new rows: its SQL, the fields whose values it sends, and the
    fields it reads back (an auto primary key, database defaults) with their converters."""

    def __init__(self, obj: Model, fields: list, returning: list) -> None:
        model = type(obj)
        query = InsertQuery(model)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = returning
        [(self.sql, params)] = compiler.as_sql()
        self.fields, self.returning, self.compiler = fields, returning, compiler
        self._local = threading.local()
        ours = self.params(obj)
        clocked = [
            getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in fields
        ]
        self.matches = len(ours) == len(params) and all(
            stamped or _same(a, b) for stamped, a, b in zip(clocked, ours, params, strict=True)
        )

    def params(self, obj: Model) -> list:
        return [
            f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection)
            for f in self.fields
        ]

    def returned(self, row: tuple) -> tuple:
        """The returned columns as Python values, converted as Django converts them, with
        this thread's connection."""
        if getattr(self._local, "compiler", None) is None:
            compiler = copy.copy(self.compiler)
            compiler.connection = connection
            cols = [f.get_col(f.model._meta.db_table) for f in self.returning]
            self._local.compiler, self._local.converters = compiler, compiler.get_converters(cols)
        if self._local.converters:
            [row] = self._local.compiler.apply_converters([row], self._local.converters)
        return row


def insert(obj: Model) -> None:
    """`obj.save(force_insert=True)` for a new row: the `INSERT` compiled once per model and
    process, the values prepared as Django does (`pre_save`, `get_db_prep_save`), the
    returned columns (an auto primary key, database defaults) read back as Django reads
    them. The ORM's own `save()` takes any row it would do more for: a model with save
    signals (looked at once per process: receivers connect when the apps load), a `save()` of
    the model's own not known to add nothing, a value that is an expression (a database
    default left unset included), a database that cannot return columns."""
    model = type(obj)
    own_save = model.save is not Model.save
    if own_save and not _OWN_SAVE_ADDS_NOTHING.get(model, lambda _: False)(obj):
        obj.save(force_insert=True)
        return
    key = (model, connection.vendor, obj.pk is None)
    if key not in _INSERTS:
        if any(_is_expression(getattr(obj, f.attname, None)) for f in model._meta.concrete_fields):
            obj.save(force_insert=True)  # planned from a row of plain values only
            return
        _INSERTS[key] = _insert_plan(obj)
    plan = _INSERTS[key]
    values = [f.pre_save(obj, add=True) for f in plan.fields] if plan else []
    if plan is None or any(_is_expression(value) for value in values):
        obj.save(force_insert=True)
        return
    params = [
        f.get_db_prep_save(v, connection=connection)
        for f, v in zip(plan.fields, values, strict=True)
    ]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        row = cursor.fetchone() if plan.returning else None
    if row is not None:
        obj._assign_returned_values(plan.returned(row), plan.returning)
    obj._state.adding, obj._state.db = False, connection.alias


def _insert_plan(obj: Model) -> _InsertPlan | None:
    model, meta = type(obj), type(obj)._meta
    fields = [f for f in meta.local_concrete_fields if not f.generated]
    if obj.pk is None:
        fields = [f for f in fields if f is not meta.auto_field]
    placeholders = ("get_placeholder_sql", "get_placeholder")  # Django 6.1's name, the old one
    if (
        not connection.features.can_return_columns_from_insert
        or any(hasattr(f, name) for f in fields for name in placeholders)
        or any(s.has_listeners(model) for s in (signals.pre_save, signals.post_save))
    ):
        return None
    plan = _InsertPlan(obj, fields, list(meta.db_returning_fields))
    if not plan.matches:
        log.warning(
            "statements: the INSERT of %s does not match Django's; the ORM sends it", model.__name__
        )
        return None
    return plan
