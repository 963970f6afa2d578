"""Running step runs: a worker's job, and python steps in the caller after its commit.

Consecutive python steps run here without a queue hop: the next run is created already
claimed by this process, in the same transaction that finished the previous one. A start, a
decision or a callback whose next step is python runs it in that process right after its
commit (HMS_INLINE_PYTHON_STEPS, the default), exactly as a worker would.
"""

import copy
import dataclasses
from functools import partial
from uuid import UUID

from django.conf import settings
from django.db import transaction

from ..engine import TransitionNotAllowed
from ..models import WorkflowInstance
from ..queries import catalog
from . import concurrency, dispatch
from .guards import Claimed
from .steps import claim_run, defer_run, open_next, record_late_answer, record_outcome


def run_step(*, run_id: UUID, attempts: int) -> None:
    """A worker's job: claim one queued step run, call its service, record the outcome."""
    run_claimed(claim_run(run_id=run_id, attempts=attempts))


def run_claimed(claimed: Claimed | None, *, runner: str = "worker") -> bool:
    """Call the service of a claimed run and record the outcome, then go on; False when a
    run had moved on meanwhile (its answer is then recorded as late, nothing else)."""
    while claimed is not None:
        run, instance = claimed.run, claimed.instance
        step = catalog.spec_of(instance).step(run.step_id)
        service = catalog.get_service(step.service)
        with concurrency.slot(service, holder=f"{run.pk}:{run.attempts}") as free:
            if not free:  # the service's calls in flight are at its limit: back to the queue
                defer_run(claimed)
                return True
            outcome = dispatch.call(service=service, instance=instance, run=run, step=step)
        try:
            claimed = record_outcome(claimed=claimed, outcome=outcome)
        except TransitionNotAllowed as moved_on:
            # Cancelled, timed out or redelivered while the call was in flight.
            record_late_answer(run=run, result=outcome.result, actor=runner, reason=str(moved_on))
            return False
    return True


def open_for_caller(instance: WorkflowInstance, step_id: str, *, now) -> None:
    """Open the step a start, a decision or a callback leads to; a python step then runs in
    this process right after the commit (HMS_INLINE_PYTHON_STEPS)."""
    claimed = open_next(instance, step_id, now=now, inline=settings.HMS_INLINE_PYTHON_STEPS)
    if claimed is not None:
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
