"""Cancelling open runs, and the running child instances below them, with their events.

Used when a branch's refusal or failure ends the instance, when a `join: any` fires, and when
an instance is cancelled; always inside the transaction that holds the tree's root lock
(docs/parallel.md).
"""

from collections.abc import Iterable
from datetime import datetime

from ..engine import Move
from ..models import OPEN_RUN_STATES, Event, RunState, Status, StepRun, WorkflowInstance
from .guards import add_event, guarded, move_instance, snapshot


def cancel_run(run: StepRun, *, reason: str, now: datetime, **detail) -> None:
    """Cancel one open run (as seen), record why, and cancel the child it waits for."""
    guarded(
        run,
        run.state,
        seen=snapshot(run),
        state=RunState.CANCELLED,
        error=reason,
        ended_at=now,
        wake_at=None,
    )
    add_event(run.instance, run, Event.Type.CANCELLED, reason=reason, lane=run.lane, **detail)
    cancel_children([run.pk], reason=f"its parent step '{run.step_id}' was cancelled", now=now)


def cancel_children(run_ids: Iterable, *, reason: str, now: datetime) -> int:
    """Cancel the running child instances started by these runs, and theirs; how many."""
    children = list(
        WorkflowInstance.objects.filter(parent_run__in=list(run_ids), status=Status.RUNNING)
    )
    for child in children:
        cancel_tree(child, reason=reason, now=now)
    return len(children)


def cancel_tree(instance: WorkflowInstance, *, reason: str, now: datetime, actor: str = "") -> None:
    """End `instance` cancelled with every open run, and its running children below it."""
    cancelled = Move(Status.CANCELLED)
    move_instance(instance, instance.current_step, cancelled, now=now, locked=True)
    open_runs = StepRun.objects.filter(instance=instance, state__in=OPEN_RUN_STATES)
    run_ids = list(open_runs.values_list("pk", flat=True))
    open_runs.update(state=RunState.CANCELLED, error=reason, ended_at=now, wake_at=None)
    add_event(instance, None, Event.Type.CANCELLED, actor=actor, reason=reason)
    cancel_children(run_ids, reason=f"its parent {instance.case_number} was cancelled", now=now)
