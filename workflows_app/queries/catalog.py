"""What is published and registered, cached per process: versions and their specs, services,
assignees, python callables, the business calendar.

A published version never changes (a change publishes a new version), so caching by primary
key is safe for the life of a process and saves a query and a CEL compile on every step.
Service rows may be edited in the admin, so they are cached only for a few seconds.
"""

import importlib
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max
from jsonschema import Draft202012Validator

from ..definitions import DEFAULT_ACCEPT, FormField, WorkflowSpec, parse_definition, parse_services
from ..engine import working_time
from ..models import (
    ApiToken,
    BusinessCalendar,
    Service,
    ServiceKind,
    WorkflowDefinition,
    WorkflowInstance,
)
from . import revisions
from .prepared import Prepared

SERVICE_TTL_SECONDS = 5.0


class UnknownService(LookupError):
    """A step names a service that is not registered."""


class ServiceNotAllowed(Exception):
    """A python service names a module outside HMS_PYTHON_SERVICES."""


# --- Published versions ---------------------------------------------------------------------


def get_definition(definition_id: int) -> WorkflowDefinition:
    """The published version with this id (cached: versions never change)."""
    return WorkflowDefinition.cached(definition_id)


_SPECS: dict[int, WorkflowSpec] = {}


def spec_of(item: WorkflowInstance | WorkflowDefinition) -> WorkflowSpec:
    """The compiled spec of an instance's version, or of a version."""
    if isinstance(item, WorkflowInstance):
        definition_id, source = item.definition_id, None
    else:
        definition_id, source = item.pk, item.source
    spec = _SPECS.get(definition_id)
    if spec is None:
        if source is None:
            source = get_definition(definition_id).source
        spec = parse_definition(source, source=f"definition #{definition_id}")
        if definition_id is not None:  # an unsaved version is parsed, not remembered
            _SPECS[definition_id] = spec
    return spec


def latest_definition(key: str, *, for_update: bool = False) -> WorkflowDefinition | None:
    """The newest published version of workflow `key` (the one new instances start on);
    `for_update` locks it, so two publishers of one workflow take turns."""
    rows = _versions(key)
    return (rows.select_for_update() if for_update else rows).first()


def _versions(key: str):
    """Every published version of workflow `key`, the newest first."""
    return WorkflowDefinition.objects.filter(key=key).order_by("-version")


def latest_for_start(
    key: str, *, token_hash: str | None
) -> tuple[WorkflowDefinition | None, ApiToken | None]:
    """The newest version of `key` (from the per-process cache of versions, which never
    change) and the row of the caller's token, in one query; (None, None) without a version."""
    rows = _NEWEST(key) if token_hash is None else _NEWEST_WITH_TOKEN(key, token_hash)
    if not rows:
        return None, None
    return WorkflowDefinition.cached(rows[0]["pk"]), revisions.token_from(rows[0])


def _newest(key: str, token_hash: str | None = None):
    rows = _versions(key)
    if token_hash is not None:
        rows = rows.annotate(**revisions.token_columns(token_hash))
    return rows.values("pk", *rows.query.annotations)[:1]


# Compiled once per process (queries/prepared.py): a start pays for running the query only.
_NEWEST = Prepared(_newest, prepare=lambda _, key: [key], sample=("sample",))
_NEWEST_WITH_TOKEN = Prepared(
    _newest,
    prepare=lambda _, key, token_hash: [*[token_hash] * len(revisions.TOKEN_FIELDS), key],
    sample=("sample", "sample-hash"),
)


def latest_definitions() -> list[WorkflowDefinition]:
    """The newest version of every workflow, by key."""
    newest = WorkflowDefinition.objects.values("key").annotate(v=Max("version"))
    wanted = {(row["key"], row["v"]) for row in newest}
    rows = WorkflowDefinition.objects.filter(key__in=[k for k, _ in wanted]).order_by("key")
    return [row for row in rows if (row.key, row.version) in wanted]


@lru_cache(maxsize=2048)
def payload_validator(definition_id: int) -> Draft202012Validator | None:
    """The compiled JSON Schema validator of a version's `input`, or None."""
    schema = spec_of(get_definition(definition_id)).input_schema
    return Draft202012Validator(schema) if schema else None


def payload_problems(definition: WorkflowDefinition, payload: Any) -> list[str]:
    """What the version's `input` schema says of a payload ("payload/address: ..."); [] if fine."""
    validator = payload_validator(definition.pk)
    if validator is None:
        return []
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [_schema_error(error) for error in errors]


def _schema_error(error) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"payload/{where}: {error.message}" if where else f"payload: {error.message}"


# --- Services, assignees, callables, calendar -----------------------------------------------

_SERVICES: dict[str, tuple[float, Any]] = {}


def get_service(name: str) -> Service:
    """The registered Service row called `name` (cached for a few seconds)."""
    cached = _SERVICES.get(name)
    now = time.monotonic()
    if cached and now - cached[0] < SERVICE_TTL_SECONDS:
        return cached[1]
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise UnknownService(f"service '{name}' is not registered")
    _SERVICES[name] = (now, service)
    return service


def service_of_step(spec: WorkflowSpec, step_id: str) -> Service:
    """The service a step names (UnknownService for a parallel or workflow step)."""
    return get_service(spec.step(step_id).service)


def runs_service(spec: WorkflowSpec, step_id: str, kind: str) -> bool:
    """Whether the step runs a service of this kind (never a parallel or workflow step)."""
    step = spec.step(step_id)
    return step.kind == "service" and get_service(step.service).kind == kind


@lru_cache(maxsize=4096)
def resolve_assignee(assignee: str) -> tuple[int | None, int | None]:
    """(group id, user id) for 'group:NAME' (created when missing) or 'user:USERNAME'."""
    kind, _, name = assignee.partition(":")
    if kind == "user":
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise LookupError(f"user '{name}' does not exist")
        return None, user.pk
    group, _ = Group.objects.get_or_create(name=name)
    return group.pk, None


def load_callable(path: str) -> Callable[..., Any]:
    """Import `module.func`, refusing modules outside the HMS_PYTHON_SERVICES prefixes."""
    if not any(path == p or path.startswith(p + ".") for p in settings.HMS_PYTHON_SERVICES):
        allowed = ", ".join(settings.HMS_PYTHON_SERVICES)
        raise ServiceNotAllowed(f"'{path}' is outside the allowed modules ({allowed})")
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def get_calendar() -> working_time.Calendar:
    """The first business calendar in the database, or office hours in the site's time zone."""
    row = BusinessCalendar.objects.order_by("pk").first()
    if row is None:
        return working_time.Calendar(tz=settings.TIME_ZONE)
    return working_time.Calendar(
        tz=row.time_zone,
        work_start=row.work_start,
        work_end=row.work_end,
        weekdays=row.weekday_numbers,
        holidays=row.holiday_dates,
    )


def accepted_types(instance: WorkflowInstance, step_id: str) -> tuple[str, ...]:
    """The document types a step takes: its request's file fields', or the default ones."""
    if not step_id or not runs_service(spec_of(instance), step_id, ServiceKind.APPLICANT):
        return DEFAULT_ACCEPT
    service = service_of_step(spec_of(instance), step_id)
    kinds = [kind for field in form_of(service) for kind in field.accept]
    return tuple(dict.fromkeys(kinds)) or DEFAULT_ACCEPT


def clear() -> None:
    """Forget every cached row and spec (tests that reuse primary keys call this)."""
    WorkflowDefinition.cached.cache_clear()
    payload_validator.cache_clear()
    resolve_assignee.cache_clear()
    _SPECS.clear()
    _SERVICES.clear()
    _FORMS.clear()


_FORMS: dict[tuple[str, Any], tuple[FormField, ...]] = {}


def form_of(service: Service) -> tuple[FormField, ...]:
    """The fields an `applicant` service asks for, checked as the loader checks them (cached
    until the service row changes)."""
    key = (service.name, service.updated_at)
    form = _FORMS.get(key)
    if form is None:
        document = {"services": {service.name: {"kind": service.kind, "form": service.form}}}
        (spec,) = parse_services(document, source=f"service {service.name}")
        form = _FORMS[key] = spec.form
    return form
