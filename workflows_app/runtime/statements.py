"""The runtime's hot UPDATEs, compiled once per shape and process.

Every step of every instance runs a guarded `UPDATE` of its run and of its instance
(runtime/guards.py). Written as `Model.objects.filter(...).update(...)`, each one spends most
of its time in Django building and compiling the statement (`add_q`, `build_filter`,
`as_sql`), while SQLite holds its write lock for the transaction (docs/BENCHMARKS.md). Here a
statement's SQL is compiled by Django once per *shape*: the model, the columns compared (and
which are compared with NULL), the columns set and any expression set (`F("revision") + 1`).
Each call then prepares its values as Django does (`get_db_prep_value` for comparisons,
`get_db_prep_save` for new values) and runs the SQL on this thread's connection.

A shape's plan is checked once against Django's own compilation of the same call (the same
parameters in the same places), so a plan never drifts from what the ORM would send; a
filter other than `column=value` is handed to the ORM unchanged.
"""

from typing import Any

from django.db import connection, transaction
from django.db.models import Expression, F, Model
from django.db.models.sql.subqueries import UpdateQuery

_PLANS: dict[tuple, tuple[str, tuple]] = {}


class _Slot(Expression):
    """A value of one call: compiled as a placeholder whose parameter is the slot itself."""

    def __init__(self, name: str, field) -> None:
        super().__init__(output_field=field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", [self]


class Add:
    """A change that adds `amount` to the column (`F(column) + amount`), the amount being a
    parameter of each call rather than part of the statement's shape."""

    def __init__(self, amount: int | float) -> None:
        self.amount = amount


MAX_SHAPES = 256  # a caller whose shapes never repeat is sent to the ORM, not remembered


def update(model: type[Model], where: dict[str, Any], changes: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**changes)`: the number of rows changed.
    A change may be `Add(amount)`: the column plus that amount."""
    if any("__" in name for name in where):
        return model._base_manager.filter(**where).update(**_as_orm(changes))
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
    if plan is None and len(_PLANS) >= MAX_SHAPES:
        return model._base_manager.filter(**where).update(**_as_orm(changes))
    sql, slots = plan or _plan(key, model, where, changes)
    params = [
        _value(model, slot, where, changes) if isinstance(slot, _Slot) else slot for slot in slots
    ]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _compiled(model, where: dict, changes: dict) -> tuple[str, list]:
    query = model._base_manager.filter(**where).query.chain(UpdateQuery)
    query.add_update_values(changes)
    return query.get_compiler(connection=connection).as_sql()


def _plan(key: tuple, model, where: dict, changes: dict) -> tuple[str, tuple]:
    marked_where = {
        name: None if value is None else _Slot(f"where:{name}", _field(model, name))
        for name, value in where.items()
    }
    marked_changes = {name: _marked(model, name, value) for name, value in changes.items()}
    _, slots = _compiled(model, marked_where, marked_changes)
    sql, params = _compiled(model, where, _as_orm(changes))
    filled = [_value(model, s, where, changes) if isinstance(s, _Slot) else s for s in slots]
    if len(filled) != len(params) or not all(map(_same, filled, params)):
        raise AssertionError(f"statements: the plan of {key!r} does not match Django's")
    _PLANS[key] = (sql, tuple(slots))
    return _PLANS[key]


def _marked(model, name: str, value: Any) -> Any:
    if _is_expression(value):
        return value
    if isinstance(value, Add):
        return F(name) + _Slot(f"add:{name}", _field(model, name))
    return _Slot(f"set:{name}", _field(model, name))


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


def _value(model, slot: _Slot, where: dict, changes: dict) -> Any:
    """A slot's parameter for this call, prepared as Django prepares it."""
    field = slot.output_field
    kind, name = slot.name.split(":", 1)
    if kind == "where":
        return field.get_db_prep_value(field.get_prep_value(where[name]), connection, prepared=True)
    value = changes[name]
    if kind == "add":
        return field.get_db_prep_save(value.amount, connection=connection)
    if hasattr(value, "prepare_database_save"):
        value = value.prepare_database_save(field)
    return field.get_db_prep_save(value, connection=connection)


_INSERTS: dict[tuple, "_InsertPlan | None"] = {}


class _InsertPlan:
    """The INSERT of one shape of a model's row: its SQL, the fields whose values it sends,
    the fields it reads back (an auto primary key, database defaults) and their converters."""

    def __init__(self, obj: Model, fields: list, returning: list) -> None:
        from django.db.models.sql.subqueries import InsertQuery

        model = type(obj)
        query = InsertQuery(model)
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = returning
        [(self.sql, params)] = compiler.as_sql()
        # The columns sent: a database default left unset is not sent (as Django does).
        self.fields = [f for f in fields if not _unset_default(obj, f)] or fields
        self.returning = returning
        cols = [f.get_col(model._meta.db_table) for f in returning]
        self.compiler, self.converters = compiler, compiler.get_converters(cols)
        ours = self.params(obj)
        clocked = [
            getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) for f in self.fields
        ]
        if len(ours) != len(params) or not all(
            stamped or _same(a, b) for stamped, a, b in zip(clocked, ours, params, strict=True)
        ):
            raise AssertionError(
                f"statements: the INSERT of {model.__name__} does not match Django's"
            )

    def params(self, obj: Model) -> list:
        return [
            f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection)
            for f in self.fields
        ]

    def returned(self, row: tuple) -> tuple:
        if self.converters:
            [row] = self.compiler.apply_converters([row], self.converters)
        return row


def _unset_default(obj: Model, field) -> bool:
    from django.db.models.expressions import DatabaseDefault

    return field.has_db_default() and isinstance(getattr(obj, field.attname), DatabaseDefault)


def insert(obj: Model) -> None:
    """`obj.save(force_insert=True)` for a new row of a model without save signals: the
    INSERT's SQL compiled once per shape (the model, whether its primary key is set, which
    database defaults are left to the database) and process; the values prepared as Django
    does (`pre_save`, `get_db_prep_save`); the returned columns (an auto primary key, database
    defaults) read back as Django reads them. Anything else (a value that is an expression, a
    model with save signals, a database that cannot return columns) takes the ORM's path."""
    from django.db.models import signals

    model, meta = type(obj), type(obj)._meta
    key = (
        model,
        connection.vendor,
        obj.pk is None,
        tuple(f.attname for f in meta.local_concrete_fields if _unset_default(obj, f)),
    )
    if key not in _INSERTS:
        fields = [f for f in meta.local_concrete_fields if not f.generated]
        if obj.pk is None:
            fields = [f for f in fields if f is not meta.auto_field]
        usable = (
            connection.features.can_return_columns_from_insert
            and not any(hasattr(f, "get_placeholder") for f in fields)
            and not any(s.has_listeners(model) for s in (signals.pre_save, signals.post_save))
            and not any(_is_expression(getattr(obj, f.attname, None)) for f in fields)
        )
        _INSERTS[key] = _InsertPlan(obj, fields, list(meta.db_returning_fields)) if usable else None
    plan = _INSERTS[key]
    if plan is None or any(_is_expression(getattr(obj, f.attname, None)) for f in plan.fields):
        obj.save(force_insert=True)
        return
    params = plan.params(obj)
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        row = cursor.fetchone() if plan.returning else None
    if row is not None:
        obj._assign_returned_values(plan.returned(row), plan.returning)
    obj._state.adding, obj._state.db = False, connection.alias
