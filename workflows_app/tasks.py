"""django-q2 entry points: each takes ids and calls services. No logic of its own."""

import logging
from datetime import timedelta
from uuid import UUID

from django.utils import timezone

from . import callbacks, dispatch, services, specs
from .engine import TransitionNotAllowed

log = logging.getLogger(__name__)


def run_step(run_id: str, attempts: int = 0) -> None:
    """Claim one queued step run, call its service, record the outcome."""
    run_claimed(services.claim_run(run_id=UUID(run_id), attempts=attempts))


def run_claimed(claimed: services.Claimed | None, *, runner: str = "worker") -> bool:
    """Call the service of a claimed run and record the outcome, then go on; False when a
    run had moved on meanwhile (its answer is then recorded as late, nothing else).

    Consecutive python steps run here without a queue hop: the next run is created already
    claimed by this process, in the same transaction that finished the previous one. A
    start, a decision or a callback whose next step is python calls this too, after its
    commit (queue.run_here, runner "caller").
    """
    while claimed is not None:
        run, instance = claimed.run, claimed.instance
        step = instance.spec.step(run.step_id)
        outcome = dispatch.call(
            service=specs.get_service(step.service), instance=instance, run=run, step=step
        )
        try:
            claimed = services.record_outcome(claimed=claimed, outcome=outcome)
        except TransitionNotAllowed as moved_on:
            # Cancelled, timed out or redelivered while the call was in flight.
            services.record_late_answer(
                run=run, result=outcome.result, actor=runner, reason=str(moved_on)
            )
            return False
    return True


def sweep() -> int:
    """The scheduled sweep (every minute); `manage.py escalate_overdue` runs the same."""
    services.beat("sweep")
    now = timezone.now()
    callbacks.forget_old_webhooks(now=now)
    return services.process_due(now=now)


KEEP_FAILURES_DAYS = 30


def prune_failures(*, older_than: timedelta = timedelta(days=KEEP_FAILURES_DAYS), now=None) -> int:
    """Daily job: delete django-q2 failures older than a month (save_limit prunes successes only)."""
    from django_q.models import Failure

    cutoff = (now or timezone.now()) - older_than
    deleted, _ = Failure.objects.filter(stopped__lt=cutoff).delete()
    return deleted
