"""Opening runs: a step's run in its lane, of whatever the step runs.

A service step's run is a task for a person, a request to the applicant (asking.py), or a
dispatch (queued, or claimed by this
process for a python step run inline). A parallel step's run waits for its branches (its join
finishes it); a workflow step's run is dispatched like an automated step, whose dispatch
starts the child instance (runtime/subworkflows.py) and then waits for it.
"""

import time
from contextvars import ContextVar
from datetime import datetime

from ..definitions import MAIN_LANE
from ..engine import Position, earliest
from ..models import Event, RunState, ServiceKind, StepRun, WorkflowInstance
from ..queries import catalog
from . import asking, notifications, queue, statements
from .assignment import assign, next_task_wake
from .guards import Claimed, add_event, due_time, lease, redelivery


def open_run(
    instance: WorkflowInstance,
    step_id: str,
    *,
    now: datetime,
    inline: bool = False,
    lane: str = MAIN_LANE,
) -> StepRun:
    """Create the run of `step_id` in `lane`: a task for a person, a dispatch (now, or
    inline), or a parallel step's run that waits for its branches."""
    step = catalog.spec_of(instance).step(step_id)
    run = StepRun(instance=instance, step_id=step_id, lane=lane, created_at=now)
    if step.kind == "parallel":
        run.state, run.started_at = RunState.WAITING, now
        statements.insert(run)
        return run
    kind = ServiceKind.PYTHON if step.kind == "workflow" else catalog.get_service(step.service).kind
    run.due_at = due_time(step.timeout, now)
    delegated = None
    if kind == ServiceKind.HUMAN:
        service = catalog.get_service(step.service)
        run.state, run.started_at = RunState.WAITING, now
        delegated = assign(run, step.assignee or f"group:{service.group}", now=now)
        run.wake_at = next_task_wake(run, window_start=now)
    elif kind == ServiceKind.APPLICANT:
        run.state, run.started_at, run.wake_at = RunState.WAITING, now, run.due_at
    elif inline:
        run.state, run.attempts, run.started_at = RunState.RUNNING, 1, now
        run.wake_at = earliest(now + lease(), run.due_at)
    else:
        run.state, run.wake_at = RunState.QUEUED, earliest(now + redelivery(), run.due_at)
        queue.enqueue_run(run.id, 0)
    statements.insert(run)
    if delegated:
        add_event(
            instance,
            run,
            Event.Type.REASSIGNED,
            to=delegated[1],
            reason="out of office",
            **{"from": delegated[0]},
        )
    if kind == ServiceKind.APPLICANT:
        asking.ask_applicant(instance, run, now=now)
    elif run.state == RunState.WAITING:
        notifications.task_assigned(run, kind="assigned")
    return run


def open_next(
    instance, step_id: str, *, now, inline: bool, lane: str = MAIN_LANE
) -> Claimed | None:
    """Open the run of `step_id`; a python step comes back claimed when `inline` is asked."""
    here = inline and runs_here(instance, step_id)
    run = open_run(instance, step_id, now=now, inline=here, lane=lane)
    return Claimed(run=run, instance=instance) if here else None


def open_positions(
    instance: WorkflowInstance, positions: tuple[Position, ...], *, now, inline: bool
) -> list[Claimed]:
    """Open a run for each position (a plan's `opens`); the python ones come back claimed
    when `inline` is asked, to run in this process after the commit."""
    alone = http_chain.set(None) if len(positions) > 1 else None  # branches run side by side
    try:
        claimed = [
            open_next(instance, p.step, now=now, inline=inline, lane=p.lane) for p in positions
        ]
    finally:
        if alone is not None:
            http_chain.reset(alone)
    return [c for c in claimed if c is not None]


# Set while a worker records the answer of an `http` step (execution.run_claimed): when its
# job must end by. The worker then goes on with the next step itself if that is `http` too,
# claimed in the transaction that opened it, as it does with python steps: no queue hop (a
# message, the broker, a second claim) between consecutive service calls. Callers (a start,
# a decision) never do: a network call never holds up a person or a portal. Nor does a
# worker whose job has not time left for the whole call within the task time-out, nor one
# opening several branches at once (they run side by side, on the queue's workers).
http_chain: ContextVar[float | None] = ContextVar("hms_http_chain", default=None)
HTTP_CALL_MARGIN = 5.0  # seconds: the connect time-out and recording, on top of the read


def runs_here(instance: WorkflowInstance, step_id: str) -> bool:
    """Whether the step may run in the caller: a python service, or a workflow step (whose
    dispatch starts the child); in a worker with time left, an http service too."""
    step = catalog.spec_of(instance).step(step_id)
    if step.kind != "service":
        return step.kind == "workflow"
    service = catalog.get_service(step.service)
    if service.kind == ServiceKind.HTTP:
        deadline = http_chain.get()
        call = float(service.timeout_seconds or 10) + HTTP_CALL_MARGIN
        return deadline is not None and time.monotonic() + call < deadline
    return service.kind == ServiceKind.PYTHON
