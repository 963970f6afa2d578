"""Per-process caches of published definition versions and their compiled specs.

A published version never changes (a change publishes a new version), so caching by primary
key is safe for the life of a process and saves a query and a CEL compile on every step.
"""

import random
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from . import definitions, working_time


@lru_cache(maxsize=2048)
def get_definition(definition_id: int):
    """The WorkflowDefinition row with this id."""
    from .models import WorkflowDefinition

    return WorkflowDefinition.objects.get(pk=definition_id)


_SPECS: dict[int, definitions.WorkflowSpec] = {}


def spec_for(definition_id: int | None, source: Mapping[str, Any]) -> definitions.WorkflowSpec:
    """The compiled spec of a stored definition document."""
    if definition_id is not None and definition_id in _SPECS:
        return _SPECS[definition_id]
    spec = definitions.parse_definition(source, source=f"definition #{definition_id}")
    if definition_id is not None:
        _SPECS[definition_id] = spec
    return spec


@lru_cache(maxsize=2048)
def payload_validator(definition_id: int) -> Draft202012Validator | None:
    """The compiled JSON Schema validator of a version's `input`, or None."""
    schema = get_definition(definition_id).spec.input_schema
    return Draft202012Validator(schema) if schema else None


def clear() -> None:
    """Forget every cached version (tests that reuse primary keys call this)."""
    get_definition.cache_clear()
    payload_validator.cache_clear()
    resolve_assignee.cache_clear()
    _SPECS.clear()
    _SERVICES.clear()


# --- Services, assignees, calendar ----------------------------------------------------------
# Service rows may be edited in the admin, so they are cached only briefly; groups and users
# named by steps are looked up once per process (tests call clear()).

SERVICE_TTL_SECONDS = 5.0
_SERVICES: dict[str, tuple[float, Any]] = {}


class UnknownService(LookupError):
    """A step names a service that is not registered."""


def get_service(name: str):
    """The registered Service row called `name` (cached for a few seconds)."""
    from .models import Service

    cached = _SERVICES.get(name)
    now = time.monotonic()
    if cached and now - cached[0] < SERVICE_TTL_SECONDS:
        return cached[1]
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise UnknownService(f"service '{name}' is not registered")
    _SERVICES[name] = (now, service)
    return service


@lru_cache(maxsize=4096)
def resolve_assignee(assignee: str) -> tuple[int | None, int | None]:
    """(group id, user id) for 'group:NAME' (created when missing) or 'user:USERNAME'."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    kind, _, name = assignee.partition(":")
    if kind == "user":
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise LookupError(f"user '{name}' does not exist")
        return None, user.pk
    group, _ = Group.objects.get_or_create(name=name)
    return group.pk, None


def get_calendar() -> working_time.Calendar:
    """The business calendar that working-time time-outs count on."""
    from .models import BusinessCalendar

    return BusinessCalendar.current()


def jitter() -> float:
    """A random fraction for retry backoff (tests replace it to get exact delays)."""
    return random.random()
