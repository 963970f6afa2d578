"""One measurement each, run by the benchmark's driver process against a running qcluster.

Rates are taken from the database's own timestamps: from just before the first start (or
enqueue) to the last instance's `ended_at` (or the last row's update), so the driver's
polling interval does not blur them.

The callers (clients starting instances, people deciding tasks) run in `callers` processes
forked from the driver, two in the rate rounds, like the viewflow peer's two processes: with
HMS_INLINE_PYTHON_STEPS (the default) the python steps run in those callers, the others in
the qcluster's two workers.
"""

import multiprocessing
import time
from contextlib import nullcontext
from datetime import datetime

from django.db import connections, transaction
from django.db.models import Max
from django.utils import timezone

from bench.baseline import ROW_PREFIX, enqueue_touch
from workflows_app import runtime
from workflows_app.models import Heartbeat, RunState, Status, StepRun, WorkflowInstance
from workflows_app.queries import catalog

POLL = 0.05
DEADLINE = 240.0
# What wraps each call a client or a person makes (the SQL counter swaps in its own).
around = nullcontext


class TooSlow(RuntimeError):
    """A measurement did not finish within its deadline."""


def _wait(done, *, deadline: float = DEADLINE, on_idle=None) -> None:
    limit = time.monotonic() + deadline
    while not done():
        if time.monotonic() > limit:
            raise TooSlow("a benchmark run did not finish in time (is the qcluster running?)")
        if on_idle is None or not on_idle():
            time.sleep(POLL)


def _last_pk() -> int:
    return WorkflowInstance.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _rate(count: int, began: datetime, ended: datetime) -> float:
    return count / max((ended - began).total_seconds(), 1e-6)


def in_callers(job, count: int, callers: int, *args) -> datetime:
    """`job(share, offset, *args)` in `callers` forked processes (in this one when 1).

    Returns when the callers began: after each has forked and connected, together (a
    barrier), as the peer's processes start their clocks after their set-up.
    """
    if callers == 1:
        began = timezone.now()
        job(count, 0, *args)
        return began
    connections.close_all()  # each child opens its own; none may share the parent's socket
    fork = multiprocessing.get_context("fork")
    ready, starts = fork.Barrier(callers), fork.Queue()
    share = count // callers
    children = [
        fork.Process(target=_caller, args=(ready, starts, job, share, i * share, *args))
        for i in range(callers)
    ]
    for child in children:
        child.start()
    began = min(starts.get(timeout=DEADLINE) for _ in children)
    for child in children:
        child.join(DEADLINE)
        if child.exitcode != 0:
            raise RuntimeError(f"a caller process ended with {child.exitcode}")
    return began


def _caller(ready, starts, job, share: int, offset: int, *args) -> None:
    _last_pk()  # connect before the clock starts
    ready.wait(DEADLINE)
    starts.put(timezone.now())
    job(share, offset, *args)
    connections.close_all()


def _starts(share: int, offset: int, definition) -> None:
    for i in range(offset, offset + share):
        with around():
            runtime.start_instance(definition=definition, payload={"n": i})


def automated(definition, count: int, *, callers: int = 1) -> float:
    """Instances per second of a workflow of python steps, start to completed."""
    base = _last_pk()
    began = in_callers(_starts, count, callers, definition)
    mine = WorkflowInstance.objects.filter(pk__gt=base, definition=definition)
    _wait(lambda: mine.filter(status=Status.COMPLETED).count() >= count)
    return _rate(count, began, mine.aggregate(end=Max("ended_at"))["end"])


def prepare_rows(count: int) -> None:
    """The rows the baseline task updates (created once)."""
    old = timezone.now().replace(year=2000)
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=f"{ROW_PREFIX}{i}", last_tick=old) for i in range(count)],
        ignore_conflicts=True,
    )


def one_row_tasks(count: int) -> float:
    """django-q2's own rate: tasks per second that each update one row."""
    began = timezone.now()
    for i in range(count):
        with around():
            enqueue_touch(f"{ROW_PREFIX}{i}")
    rows = Heartbeat.objects.filter(name__startswith=ROW_PREFIX, last_tick__gte=began)
    _wait(lambda: rows.count() >= count)
    return _rate(count, began, rows.aggregate(end=Max("last_tick"))["end"])


def _decide(run_ids) -> int:
    for run_id in run_ids:
        with around():
            runtime.complete_task(run_id=run_id, result="approved", actor="user:bench")
    return len(run_ids)


def _waiting(instances) -> list:
    return list(
        StepRun.objects.filter(
            instance__in=instances, step_id="approve", state=RunState.WAITING
        ).values_list("pk", flat=True)[:100]
    )


def _people(share: int, offset: int, definition) -> None:
    """Start each application, and decide its task at once if it is there (as viewflow's
    peer does); then decide the tasks that the workers open later."""
    mine = []
    for i in range(offset, offset + share):
        with around():
            instance, _ = runtime.start_instance(
                definition=definition, payload={"applicant": f"A{i}"}
            )
        mine.append(instance.pk)
        _decide(_waiting([instance.pk]))
    open_ = WorkflowInstance.objects.filter(pk__in=mine, current_step__in=["validate", "approve"])
    _wait(lambda: not open_.exists(), on_idle=lambda: _decide(_waiting(mine)))


def with_reviewers(definition, count: int) -> None:
    """Start `count` applications one after another; decide every task each one opens (in
    any step or branch) until it has completed."""
    for i in range(count):
        with around():
            instance, _ = runtime.start_instance(definition=definition, payload={"n": i})
        tasks = StepRun.objects.filter(instance=instance, state=RunState.WAITING)
        for _ in range(10):
            waiting = list(tasks.exclude(assignee_group=None).values_list("pk", flat=True))
            if not waiting:
                break
            _decide(waiting)
    done = WorkflowInstance.objects.filter(definition=definition, status=Status.COMPLETED)
    _wait(lambda: done.count() >= count)


def with_a_person(definition, count: int, *, callers: int = 1) -> float:
    """Instances per second of the seed's shape, a person deciding each task as it appears."""
    base = _last_pk()
    began = in_callers(_people, count, callers, definition)
    mine = WorkflowInstance.objects.filter(pk__gt=base, definition=definition)
    _wait(lambda: mine.filter(status=Status.COMPLETED).count() >= count)
    return _rate(count, began, mine.aggregate(end=Max("ended_at"))["end"])


def queue_latency(definition, count: int, *, gap: float = 0.05) -> list[float]:
    """Milliseconds from each start's commit to its first step starting, at a gentle pace."""
    committed: dict[int, datetime] = {}
    for i in range(count):
        stamp: list[datetime] = []
        with transaction.atomic():
            # Registered first, so it runs at commit, before the enqueue the start registers.
            transaction.on_commit(lambda stamp=stamp: stamp.append(timezone.now()))
            instance, _ = runtime.start_instance(definition=definition, payload={"n": i})
        committed[instance.pk] = stamp[0]
        time.sleep(gap)
    first = catalog.spec_of(definition).first_step
    runs = StepRun.objects.filter(instance__in=list(committed), step_id=first)
    _wait(lambda: runs.filter(started_at__isnull=False).count() >= count)
    return [
        (started - committed[pk]).total_seconds() * 1000
        for pk, started in runs.values_list("instance_id", "started_at")
    ]


def task_latency(count: int, *, gap: float = 0.05) -> list[float]:
    """django-q2's own latency, for comparison: milliseconds from enqueue to a task's update."""
    sent: dict[str, datetime] = {}
    for i in range(count):
        name = f"{ROW_PREFIX}{i}"
        sent[name] = timezone.now()
        enqueue_touch(name)
        time.sleep(gap)
    rows = Heartbeat.objects.filter(name__in=list(sent), last_tick__gte=min(sent.values()))
    _wait(lambda: rows.count() >= count)
    return [
        (tick - sent[name]).total_seconds() * 1000
        for name, tick in rows.values_list("name", "last_tick")
    ]
