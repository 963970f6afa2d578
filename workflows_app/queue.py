"""The one seam to the job queue (django-q2), so that a later switch stays cheap.

Messages carry only a step-run id: they may be duplicated or lost without harm, because the
step-run row, not the queue, says what is to be done (DJANGO-Q2.md, rules 1-4).
"""

import copy
import dataclasses
from functools import partial
from uuid import UUID

from django.db import transaction
from django.utils.module_loading import import_string
from django_q.tasks import async_task


def enqueue_run(run_id: UUID, attempts: int) -> None:
    """Ask a worker to run a step run after commit; `attempts` is what the claim expects.

    A stale duplicate of an earlier attempt's message then finds another count and does
    nothing, so it can never start a retry early.
    """
    transaction.on_commit(partial(_send, "workflows_app.tasks.run_step", str(run_id), attempts))


def enqueue(func: str, *args) -> None:
    """Enqueue any task after commit (notifications and the like)."""
    transaction.on_commit(partial(_send, func, *args))


def run_here(claimed) -> None:
    """Run a claimed python step in this process right after commit, instead of a queue hop.

    The run is already `running` with a lease, like a worker's claim: if this process dies
    before it finishes, the lease ends and the timers send it to a worker (redelivery).
    `robust`: a failure here is logged, never turned into an error for a caller whose own
    change has already committed.
    """
    transaction.on_commit(partial(_run_claimed, claimed), robust=True)


def _run_claimed(claimed) -> None:
    """The steps work on a copy of the caller's instance: the caller's object shows where
    the steps ended once they have, and otherwise what the caller itself committed."""
    callers = claimed.instance
    steps = copy.copy(callers)
    ended = import_string("workflows_app.tasks.run_claimed")(
        dataclasses.replace(claimed, instance=steps), runner="caller"
    )
    if ended:
        callers.__dict__.update(steps.__dict__)


def _send(func: str, *args) -> None:
    # save=False: no Success row per job (our step-run rows are the record, and pruning them
    # is most of django-q2's monitor work); failures are still saved.
    async_task(func, *args, save=False)
