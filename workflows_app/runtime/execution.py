"""Running step runs: a worker's job, and python steps in the caller after its commit.

Consecutive python steps run here without a queue hop: the next run is created already
claimed by this process, in the same transaction that finished the previous one. A start, a
decision or a callback whose next step is python runs it in that process right after its
commit (HMS_INLINE_PYTHON_STEPS, the default), exactly as a worker would.
"""

import copy
import dataclasses
import time
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction

from ..engine import Position, TransitionNotAllowed
from ..models import ServiceKind, WorkflowInstance
from ..queries import catalog
from . import concurrency, dispatch, opening, subworkflows
from .guards import Claimed
from .opening import open_positions
from .steps import claim_run, defer_run, record_late_answer, record_outcome


def run_step(*, run_id: UUID, attempts: int) -> None:
    """A worker's job: claim one queued step run, call its service, record the outcome; then
    the steps after it that this worker may run (opening.runs_here), without a queue hop."""
    run_claimed(
        claim_run(run_id=run_id, attempts=attempts),
        job_ends=time.monotonic() + settings.HMS_TASK_TIMEOUT,
    )


def run_claimed(
    claimed: Claimed | None, *, runner: str = "worker", job_ends: float | None = None
) -> bool:
    """Call the service of a claimed run and record the outcome, then go on with the runs
    that outcome claimed here; False when a run had moved on meanwhile (its answer is then
    recorded as late, nothing else). `job_ends`: a worker's job, which may go on with a
    next http step after an http step (opening.http_chain)."""
    pending, kept_up = ([claimed] if claimed else []), True
    while pending:
        current = pending.pop(0)
        run, instance = current.run, current.instance
        step = catalog.spec_of(instance).step(run.step_id)
        try:
            if step.kind == "workflow":
                pending += subworkflows.start_child(current)
                continue
            outcome = _call(current, step)
            if outcome is not None:
                chain = job_ends if job_ends and _is_http(step) else None
                token = opening.http_chain.set(chain)
                try:
                    pending += record_outcome(claimed=current, outcome=outcome)
                finally:
                    opening.http_chain.reset(token)
        except TransitionNotAllowed as moved_on:
            # Cancelled, timed out or redelivered while the call was in flight.
            result = "" if step.kind == "workflow" else outcome.result
            record_late_answer(run=run, result=result, actor=runner, reason=str(moved_on))
            kept_up = False
    return kept_up


def _is_http(step) -> bool:
    return step.kind == "service" and catalog.get_service(step.service).kind == ServiceKind.HTTP


def _call(claimed: Claimed, step) -> dispatch.Outcome | None:
    """One call to the step's service; None when the service is at its limit of calls in
    flight (the run goes back to the queue unrun)."""
    run, service = claimed.run, catalog.get_service(step.service)
    with concurrency.slot(service, holder=f"{run.pk}:{run.attempts}") as free:
        if not free:
            defer_run(claimed)
            return None
        return dispatch.call(service=service, instance=claimed.instance, run=run, step=step)


def open_for_caller(instance: WorkflowInstance, positions: tuple[Position, ...], *, now) -> None:
    """Open the steps a start leads to; python steps then run in this process right after
    the commit (HMS_INLINE_PYTHON_STEPS)."""
    inline = settings.HMS_INLINE_PYTHON_STEPS
    for claimed in open_positions(instance, positions, now=now, inline=inline):
        run_after_commit(claimed)


def run_after_commit(claimed: Claimed) -> None:
    """Run a claimed python step in this process right after commit, instead of a queue hop.

    The run is already `running` with a lease, like a worker's claim: if this process dies
    before it finishes, the lease ends and the timers send it to a worker (redelivery).
    `robust`: a failure here is logged, never turned into an error for a caller whose own
    change has already committed.
    """
    transaction.on_commit(partial(_run_for_caller, claimed), robust=True)


def _run_for_caller(claimed: Claimed) -> None:
    """The steps work on a copy of the caller's instance: the caller's object shows where
    the steps ended once they have, and otherwise what the caller itself committed."""
    callers = claimed.instance
    steps = copy.copy(callers)
    if run_claimed(dataclasses.replace(claimed, instance=steps), runner="caller"):
        callers.__dict__.update(steps.__dict__)
