"""Read-only aggregates for the public pages: the board's waits and how long steps usually take.

Every function here runs a fixed number of aggregate queries, however many instances exist.
Medians: SQLite has no median aggregate and PostgreSQL's percentile_cont has no SQLite
equivalent, so medians come from window functions that both run (SQLite >= 3.25): number the
rows of each step by time, count them, and keep only the middle one or two rows. One query
returns every step's median, so the database sorts each group once and sends back at most two
rows per step.
"""

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock

from django.core.cache import cache
from django.db.models import Count, F, Min, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..definitions import humanize, in_language
from ..definitions.languages import Text
from ..models import OPEN_RUN_STATES, Event, RunState, StepRun, WorkflowDefinition
from . import catalog

TYPICAL_SAMPLE = 500  # a typical duration is the median of at most this many latest runs
TYPICAL_MINIMUM = 5  # with fewer finished runs than this, no estimate is shown
TYPICAL_TTL_SECONDS = 300.0  # a typical duration moves slowly; polls must not recompute it
# Every viewer of the board sees the same figures: one snapshot in the shared cache, computed
# again at most this often, by one process at a time while the others show the previous one.
# The rows hold moments, not durations, so a cached board still shows waits as of now.
BOARD_TTL_SECONDS = 5.0
BOARD_KEY = "hms:board:2"  # 2: rows hold language maps (a new shape)
BOARD_LOCK = "hms:board:refreshing"
BOARD_LOCK_SECONDS = 120

_TYPICAL: dict[tuple[str, str], tuple[float, timedelta | None]] = {}


@dataclass(frozen=True, slots=True)
class Wait:
    """The open runs of one step: how many, since when the middle and the oldest wait."""

    count: int
    median_since: datetime
    oldest_since: datetime


@dataclass(frozen=True, slots=True)
class StepWaits:
    """One row of the board."""

    step_id: str
    title_text: Text  # the cached board serves every language: shown by `title`
    waiting: int
    median_since: datetime | None
    oldest_since: datetime | None
    escalations_today: int
    with_supervisors: int = 0  # tasks whose escalation ladder ran out, flagged on the board

    @property
    def title(self) -> str:
        """The step's title in the active language."""
        return in_language(self.title_text) or humanize(self.step_id)


@dataclass(frozen=True, slots=True)
class WorkflowWaits:
    """One workflow on the board, its steps in definition order."""

    key: str
    name_text: Text
    steps: tuple[StepWaits, ...]

    @property
    def name(self) -> str:
        """The workflow's name in the active language."""
        return in_language(self.name_text) or humanize(self.key)

    @property
    def waiting(self) -> int:
        """Applications waiting at any step of this workflow."""
        return sum(step.waiting for step in self.steps)


def board(*, now: datetime) -> list[WorkflowWaits]:
    """Every public workflow (newest version) with the waits of each step (five queries, then
    cached)."""
    snapshot = cache.get(BOARD_KEY)
    if snapshot and time.time() - snapshot[0] < _freshness(snapshot):
        return snapshot[1]
    if snapshot and not cache.add(BOARD_LOCK, True, timeout=BOARD_LOCK_SECONDS):
        return snapshot[1]  # another process is computing the next snapshot
    try:
        return refresh_board(now)
    finally:
        cache.delete(BOARD_LOCK)


def refresh_board(now: datetime) -> list[WorkflowWaits]:
    """Compute the board now and share it with every process."""
    started = time.time()
    workflows = _compute_board(now)
    cache.set(BOARD_KEY, (started, workflows, time.time() - started), timeout=None)
    return workflows


def _freshness(snapshot: tuple) -> float:
    """How long a snapshot stays fresh: the TTL, or ten times what computing it cost.

    With a million open tasks the board takes seconds to compute; without this every
    reader after the TTL would compute it again and the page would never be quick.
    """
    cost = snapshot[2] if len(snapshot) > 2 else 0.0
    return max(BOARD_TTL_SECONDS, 10 * cost)


def _compute_board(now: datetime) -> list[WorkflowWaits]:
    waits = open_waits()
    escalations = escalations_since(start_of_day(now))
    flagged = with_supervisors()
    return [
        _workflow_waits(definition, waits, escalations, flagged)
        for definition in catalog.latest_definitions()
        if definition.public  # internal workflows' names and queues are not the public's
    ]


def _workflow_waits(
    definition: WorkflowDefinition,
    waits: dict[tuple[str, str], Wait],
    escalations: dict[tuple[str, str], int],
    flagged: dict[tuple[str, str], int],
) -> WorkflowWaits:
    spec = catalog.spec_of(definition)
    # Every step where work waits, branches' steps included (a parallel step's own run only
    # waits for its branches, which are counted).
    joins = {step.id for step in spec.all_steps if step.kind == "parallel"}
    titles = {step.id: step.title for step in spec.all_steps if step.id not in joins}
    # Instances still on an older version may wait at a step the newest version dropped.
    for key, step_id in [*waits, *escalations]:
        if key == definition.key and step_id not in titles and step_id not in joins:
            titles[step_id] = ""
    rows = []
    for step_id, title in titles.items():
        wait = waits.get((definition.key, step_id))
        rows.append(
            StepWaits(
                step_id=step_id,
                title_text=title,
                waiting=wait.count if wait else 0,
                median_since=wait.median_since if wait else None,
                oldest_since=wait.oldest_since if wait else None,
                escalations_today=escalations.get((definition.key, step_id), 0),
                with_supervisors=flagged.get((definition.key, step_id), 0),
            )
        )
    return WorkflowWaits(
        key=definition.key, name_text=catalog.spec_of(definition).name, steps=tuple(rows)
    )


def open_waits() -> dict[tuple[str, str], Wait]:
    """(workflow key, step id) -> its open runs' count, median and oldest start (one query)."""
    group = [F("instance__definition__key"), F("step_id")]
    rows = (
        StepRun.objects.filter(state__in=OPEN_RUN_STATES)
        .annotate(
            workflow=F("instance__definition__key"),
            position=Window(RowNumber(), partition_by=group, order_by=[F("created_at"), F("pk")]),
            total=Window(Count("pk"), partition_by=group),
            oldest=Window(Min("created_at"), partition_by=group),
        )
        .filter(_middle_rows())
        .values_list("workflow", "step_id", "total", "oldest", "created_at")
    )
    middles: dict[tuple[str, str], list] = defaultdict(list)
    for workflow, step_id, total, oldest, created_at in rows:
        middles[(workflow, step_id)].append((total, oldest, created_at))
    return {group: _wait(found) for group, found in middles.items()}


def _middle_rows() -> Q:
    """The middle row of an odd count, the two middle rows of an even one (1-based)."""
    return Q(position=(F("total") + 1) / 2) | Q(position=F("total") / 2 + 1)


def _wait(found: list[tuple[int, datetime, datetime]]) -> Wait:
    total, oldest = found[0][0], found[0][1]
    times = sorted(created_at for _, _, created_at in found)
    median = times[0] + (times[-1] - times[0]) / 2
    return Wait(count=total, median_since=median, oldest_since=oldest)


def escalations_since(since: datetime) -> dict[tuple[str, str], int]:
    """(workflow key, step id) -> escalations recorded since `since` (one query)."""
    rows = (
        Event.objects.filter(type=Event.Type.ESCALATED, created_at__gte=since)
        .values_list("instance__definition__key", "step")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(key, step): n for key, step, n in rows}


def with_supervisors() -> dict[tuple[str, str], int]:
    """(workflow key, step id) -> open tasks whose escalation ladder ran out (one query)."""
    rows = (
        StepRun.objects.filter(state=RunState.WAITING, escalation_exhausted=True)
        .values_list("instance__definition__key", "step_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(key, step): n for key, step, n in rows}


def start_of_day(now: datetime) -> datetime:
    """Midnight of `now`'s day in the site's time zone."""
    return timezone.make_aware(datetime.combine(timezone.localdate(now), clock.min))


def typical_duration(workflow_key: str, step_id: str) -> timedelta | None:
    """How long this step of this workflow usually takes: the median of its latest finished runs.

    None when fewer than TYPICAL_MINIMUM runs have finished. Cached in the process for a few
    minutes, so a tracker polling every few seconds does not sort the history each time.
    """
    now = time.monotonic()
    cached = _TYPICAL.get((workflow_key, step_id))
    if cached and now - cached[0] < TYPICAL_TTL_SECONDS:
        return cached[1]
    value = _median_duration(workflow_key, step_id)
    if len(_TYPICAL) > 1000:
        _TYPICAL.clear()
    _TYPICAL[(workflow_key, step_id)] = (now, value)
    return value


def _median_duration(workflow_key: str, step_id: str) -> timedelta | None:
    latest = (
        StepRun.objects.filter(
            step_id=step_id,
            state=RunState.SUCCEEDED,
            instance__definition__key=workflow_key,
            started_at__isnull=False,
            ended_at__isnull=False,
        )
        .order_by("-ended_at")
        .values_list("started_at", "ended_at")[:TYPICAL_SAMPLE]
    )
    durations = [ended - started for started, ended in latest]
    if len(durations) < TYPICAL_MINIMUM:
        return None
    return statistics.median(durations)


def clear() -> None:
    """Forget cached figures (tests call this)."""
    _TYPICAL.clear()
    cache.delete_many([BOARD_KEY, BOARD_LOCK])
