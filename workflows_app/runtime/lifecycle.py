"""An instance's life as a whole: start (with idempotency and the input schema), cancel, retry."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import engine
from ..definitions import MAIN_LANE
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
from . import branches, clock, statements, webhooks
from .cancellation import cancel_children
from .execution import open_for_caller, run_after_commit
from .guards import add_event, move_instance
from .notifications import email_problem
from .opening import open_run


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
    language: str = "",
) -> tuple[WorkflowInstance, bool]:
    """Start an instance on `definition`; with a known idempotency key, return the earlier one.
    `language` (a code of settings.LANGUAGES, "" for the default) is that of its emails."""
    digest = _request_digest(definition.key, payload, language)
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
                    definition, payload, idempotency_key, digest, started_by, number, language
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
    definition, payload, idempotency_key, digest, started_by, case_number, language
) -> WorkflowInstance:
    spec = catalog.spec_of(definition)
    plan = engine.begin(spec)
    instance = WorkflowInstance(
        definition=definition,
        case_number=case_number,
        payload=dict(payload),
        current_step=plan.opens[0].step,
        deadline_at=clock.started(spec, timezone.now()),
        idempotency_key=idempotency_key or None,
        request_digest=digest,
        started_by=started_by,
        language=language,
    )
    statements.insert(instance)
    open_for_caller(instance, plan.opens, now=instance.created_at)
    webhooks.record_change(instance, now=instance.created_at, current_steps=_steps(plan.opens))
    return instance


def _steps(positions) -> list[str]:
    return [position.step for position in positions]


def _request_digest(key: str, payload: Mapping[str, Any], language: str = "") -> str:
    # The language joins the body only when given, so earlier digests stay valid.
    parts = [key, payload, language] if language else [key, payload]
    body = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
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
    problems += catalog.payload_problems(definition, payload)
    if problems:
        raise InvalidPayload(problems)


def cancel_instance(*, instance_id: int, reason: str, actor: str = "") -> WorkflowInstance:
    """End a running instance as `cancelled`: every open run of every branch, and its running
    children; a child's parent then sees its workflow step fail."""
    now = timezone.now()
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance.is_finished:
            raise TransitionNotAllowed(
                f"{instance.case_number} has already ended ({instance.status})"
            )
        step = instance.current_step
        move_instance(instance, step, engine.Move(Status.CANCELLED), now=now)
        open_runs = StepRun.objects.filter(instance=instance, state__in=OPEN_RUN_STATES)
        run_ids = list(open_runs.values_list("pk", flat=True))
        open_runs.update(state=RunState.CANCELLED, error=reason, ended_at=now, wake_at=None)
        add_event(instance, None, Event.Type.CANCELLED, actor=actor, reason=reason, step=step)
        ended = f"its parent {instance.case_number} was cancelled"
        cancel_children(run_ids, reason=ended, now=now)
        if instance.parent_run_id:
            inline = settings.HMS_INLINE_PYTHON_STEPS
            for claimed in branches.finish_parent_step(instance, now=now, inline=inline):
                run_after_commit(claimed)
    return instance


def retry_instance(*, instance_id: int, actor: str = "") -> WorkflowInstance:
    """Resume a failed instance where it was: its failed step and the branches its failure
    cancelled get fresh runs (docs/parallel.md)."""
    now = timezone.now()
    with transaction.atomic():
        instance = _locked(instance_id)
        step_id = (instance.error or {}).get("step", "")
        if instance.status != Status.FAILED or not step_id:
            raise TransitionNotAllowed(
                f"{instance.case_number} is {instance.status}; only a failed instance can be retried"
            )
        if instance.parent_run_id:
            parent = instance.parent_run.instance.case_number
            raise TransitionNotAllowed(
                f"{instance.case_number} is a sub-workflow; retry its parent {parent}, which "
                "starts it again"
            )
        positions = _open_at_failure(instance, step_id)
        main = [step for lane, step in positions if lane == MAIN_LANE]
        WorkflowInstance.objects.filter(pk=instance.pk).update(
            status=Status.RUNNING,
            current_step=main[0],
            error=None,
            outcome=None,
            ended_at=None,
            updated_at=now,
            revision=F("revision") + 1,
        )
        instance.status, instance.current_step, instance.error = Status.RUNNING, main[0], None
        instance.ended_at, instance.outcome = None, None
        runs = [open_run(instance, step, now=now, lane=lane) for lane, step in positions]
        add_event(instance, runs[0], Event.Type.RETRIED, actor=actor)
        webhooks.record_change(instance, now=now, current_steps=[r.step_id for r in runs])
    return instance


def _locked(instance_id: int) -> WorkflowInstance:
    """The instance, its tree's root locked first (then the instance)."""
    root_id = WorkflowInstance.objects.filter(pk=instance_id).values_list("root_id", flat=True)
    if root := root_id.first():
        WorkflowInstance.objects.select_for_update().filter(pk=root).exists()
    return WorkflowInstance.objects.select_for_update().get(pk=instance_id)


def _open_at_failure(instance: WorkflowInstance, step_id: str) -> list[tuple[str, str]]:
    """(lane, step) of every run open when the instance failed: the failed step's, and
    those its failure cancelled (closed in the same transaction), in definition order."""
    spec = catalog.spec_of(instance)
    cancelled = StepRun.objects.filter(
        instance=instance, state=RunState.CANCELLED, ended_at=instance.ended_at
    ).values_list("lane", "step_id")
    found = {spec.lane_of(step_id): step_id, **dict(cancelled)}
    found[spec.lane_of(step_id)] = step_id
    return sorted(found.items(), key=lambda item: spec.order_of(item[1]))
