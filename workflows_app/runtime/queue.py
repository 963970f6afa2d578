"""The one seam to the job queue (django-q2), so that a later switch stays cheap.

Messages carry only ids: they may be duplicated or lost without harm, because the step-run
row, not the queue, says what is to be done (docs/queue.md). They name their
entry points in `workflows_app.tasks` by dotted path, as django-q2 requires; those paths are
kept stable so that messages queued before a deploy still run after it.
"""

from functools import partial
from uuid import UUID

from django.db import transaction
from django_q.tasks import async_task

RUN_STEP = "workflows_app.tasks.run_step"


def enqueue_run(run_id: UUID, attempts: int) -> None:
    """Ask a worker to run a step run after commit; `attempts` is what the claim expects.

    A stale duplicate of an earlier attempt's message then finds another count and does
    nothing, so it can never start a retry early.
    """
    transaction.on_commit(partial(_send, RUN_STEP, str(run_id), attempts))


def enqueue(func: str, *args) -> None:
    """Enqueue a job of `workflows_app.tasks` after commit (emails and the like)."""
    transaction.on_commit(partial(_send, func, *args))


def _send(func: str, *args) -> None:
    # save=False: no Success row per job (our step-run rows are the record, and pruning them
    # is most of django-q2's monitor work); failures are still saved.
    async_task(func, *args, save=False)
