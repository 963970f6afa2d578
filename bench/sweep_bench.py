"""The timer sweep: escalating many overdue tasks, and one pass over many open tasks with none due."""

import statistics
import time

from django.utils import timezone

from bench import dataset
from workflows_app import runtime
from workflows_app.models import Event

BATCH_LIMIT_CALLS = 1000  # 200 per call: far more than 10,000 tasks need


def escalation(*, rounds: int, tasks: int = 10_000) -> dict:
    """Seconds to escalate `tasks` overdue tasks with process_due called until nothing is due."""
    samples = []
    for _ in range(rounds):
        dataset.generate_waiting(tasks, overdue=True)
        before = Event.objects.filter(type=Event.Type.ESCALATED).count()
        began = time.perf_counter()
        for _ in range(BATCH_LIMIT_CALLS):
            if not runtime.process_due(now=timezone.now()):
                break
        seconds = time.perf_counter() - began
        escalated = Event.objects.filter(type=Event.Type.ESCALATED).count() - before
        samples.append({"tasks": escalated, "seconds": seconds})
    return {"samples": samples}


def idle_sweep(*, calls: int = 50) -> dict:
    """Milliseconds of one process_due pass and of one timer-thread poll, nothing being due."""
    from workflows_app.models import OPEN_RUN_STATES, StepRun

    sweep, poll = [], []
    for _ in range(calls):
        began = time.perf_counter()
        acted = runtime.process_due(now=timezone.now())
        sweep.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        StepRun.objects.filter(state__in=OPEN_RUN_STATES, wake_at__lte=timezone.now()).exists()
        poll.append((time.perf_counter() - began) * 1000)
        assert acted == 0, "the idle sweep found something due"
    return {
        "sweep_ms": statistics.median(sweep),
        "sweep_p99_ms": sorted(sweep)[int(0.99 * calls) - 1],
        "poll_ms": statistics.median(poll),
    }
