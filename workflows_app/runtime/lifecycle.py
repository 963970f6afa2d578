"""An instance's life as a whole: start (with idempotency and the input schema), cancel, retry."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import engine
from ..engine import TransitionNotAllowed
from ..models import (
    OPEN_RUN_STATES,
    Event,
    RunState,
    Status,
    StepRun,
    WorkflowDefinition,
    WorkflowInstance,
    new_case_number,
)
from ..queries import catalog
from . import clock
from .execution import open_for_caller
from .guards import add_event, move_instance
from .notifications import email_problem
from .steps import open_run


class InvalidPayload(Exception):
    """The payload does not satisfy the workflow's `input` schema (API: 422)."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class IdempotencyConflict(Exception):
    """The same Idempotency-Key came with another body (API: 422)."""


def start_instance(
    *,
    definition: WorkflowDefinition,
    payload: Mapping[str, Any],
    idempotency_key: str | None = None,
    started_by: str = "",
) -> tuple[WorkflowInstance, bool]:
    """Start an instance on `definition`; with a known idempotency key, return the earlier one."""
    digest = _request_digest(definition.key, payload)
    if idempotency_key:
        earlier = _instance_for_key(idempotency_key, digest)
        if earlier:
            return earlier, False
    _check_payload(definition, payload)
    for _ in range(CASE_NUMBER_DRAWS):
        number = new_case_number(definition.case_prefix, timezone.now())
        try:
            with transaction.atomic():
                instance = _create_instance(
                    definition, payload, idempotency_key, digest, started_by, number
                )
            return instance, True
        except IntegrityError:
            # Two requests with one key raced: the other committed first.
            if idempotency_key and (earlier := _instance_for_key(idempotency_key, digest)):
                return earlier, False
            # A random case number already taken (about one in a billion per workflow and
            # year): draw again. Anything else is not ours to hide.
            if not WorkflowInstance.objects.filter(case_number=number).exists():
                raise
    raise IntegrityError(f"no free case number after {CASE_NUMBER_DRAWS} draws")


CASE_NUMBER_DRAWS = 5


def _create_instance(
    definition, payload, idempotency_key, digest, started_by, case_number
) -> WorkflowInstance:
    spec = catalog.spec_of(definition)
    move = engine.start(spec)
    instance = WorkflowInstance.objects.create(
        definition=definition,
        case_number=case_number,
        payload=dict(payload),
        current_step=move.step,
        deadline_at=clock.started(spec, timezone.now()),
        idempotency_key=idempotency_key or None,
        request_digest=digest,
        started_by=started_by,
    )
    open_for_caller(instance, move.step, now=instance.created_at)
    return instance


def _request_digest(key: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps([key, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _instance_for_key(key: str, digest: str) -> WorkflowInstance | None:
    earlier = WorkflowInstance.objects.filter(idempotency_key=key).first()
    if earlier and earlier.request_digest != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different body; use a new key"
        )
    return earlier


def _check_payload(definition: WorkflowDefinition, payload: Mapping[str, Any]) -> None:
    """The workflow's `input` schema, and `email` (where notifications go) as an address."""
    problems = []
    if why := email_problem(payload.get("email")):
        problems.append(f"payload/email: {why}")
    validator = catalog.payload_validator(definition.pk)
    if validator is not None:
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        problems += [_schema_error(e) for e in errors]
    if problems:
        raise InvalidPayload(problems)


def _schema_error(error) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"payload/{where}: {error.message}" if where else f"payload: {error.message}"


def cancel_instance(*, instance_id: int, reason: str, actor: str = "") -> WorkflowInstance:
    """End a running instance as `cancelled`, closing its open step run."""
    now = timezone.now()
    with transaction.atomic():
        instance = WorkflowInstance.objects.select_for_update().get(pk=instance_id)
        if instance.is_finished:
            raise TransitionNotAllowed(
                f"{instance.case_number} has already ended ({instance.status})"
            )
        step = instance.current_step
        move_instance(instance, step, engine.Move(Status.CANCELLED), now=now)
        StepRun.objects.filter(instance=instance, state__in=OPEN_RUN_STATES).update(
            state=RunState.CANCELLED, ended_at=now, wake_at=None
        )
        add_event(instance, None, Event.Type.CANCELLED, actor=actor, reason=reason, step=step)
    return instance


def retry_instance(*, instance_id: int, actor: str = "") -> WorkflowInstance:
    """Resume a failed instance at its failed step with a fresh run."""
    now = timezone.now()
    with transaction.atomic():
        instance = WorkflowInstance.objects.select_for_update().get(pk=instance_id)
        step_id = (instance.error or {}).get("step", "")
        if instance.status != Status.FAILED or not step_id:
            raise TransitionNotAllowed(
                f"{instance.case_number} is {instance.status}; only a failed instance can be retried"
            )
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=Status.RUNNING,
            current_step=step_id,
            error=None,
            outcome=None,
            ended_at=None,
            updated_at=now,
        )
        instance.status, instance.current_step, instance.error = Status.RUNNING, step_id, None
        instance.ended_at, instance.outcome = None, None
        run = open_run(instance, step_id, now=now)
        add_event(instance, run, Event.Type.RETRIED, actor=actor)
    return instance
