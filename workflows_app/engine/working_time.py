"""Working-time arithmetic on a business calendar; pure: no ORM, no I/O, no clock.

Working time is the union of daily windows [work_start, work_end) in the calendar's local time
zone, on its weekdays, minus its holidays. Windows are converted to UTC through zoneinfo, so a
working second is a real elapsed second and DST changes outside the window change nothing.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Bounds the search for the next working day: more idle days in a row is a broken calendar.
MAX_IDLE_DAYS = 3660

_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Calendar:
    tz: str = "Europe/Brussels"  # zoneinfo name
    work_start: time = time(9, 0)  # local wall-clock
    work_end: time = time(17, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0
    holidays: frozenset[date] = frozenset()  # local dates with no work

    def __post_init__(self) -> None:
        # Callers may pass lists or sets (parsed YAML); frozensets keep the calendar hashable.
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if self.work_start >= self.work_end:
            raise ValueError(
                f"work_start {self.work_start} must be before work_end {self.work_end}"
            )
        if not self.weekdays <= set(range(7)):
            raise ValueError(
                f"weekdays must be 0 (Monday) to 6 (Sunday), got {sorted(self.weekdays)}"
            )
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    @property
    def hours_per_day(self) -> float:
        """Length of one working day in wall-clock hours: work_end - work_start."""
        length = datetime.combine(date.min, self.work_end) - datetime.combine(
            date.min, self.work_start
        )
        return length / timedelta(hours=1)


DEFAULT_CALENDAR = Calendar()


def working_days_to_seconds(days: float, calendar: Calendar = DEFAULT_CALENDAR) -> int:
    """Seconds in `days` working days, a working day being `calendar.hours_per_day` hours."""
    if days < 0:
        raise ValueError(f"days must be zero or more, got {days}")
    return round(days * calendar.hours_per_day * 3600)


def is_working_time(moment: datetime, calendar: Calendar = DEFAULT_CALENDAR) -> bool:
    """Whether the aware `moment` falls inside working hours (opening included, closing not)."""
    moment = _as_utc(moment, "moment")
    zone = ZoneInfo(calendar.tz)
    window = _window(moment.astimezone(zone).date(), calendar, zone)
    return window is not None and window[0] <= moment < window[1]


def add_working_seconds(
    start: datetime, seconds: int, calendar: Calendar = DEFAULT_CALENDAR
) -> datetime:
    """The aware datetime (UTC) when `seconds` of working time have elapsed after `start` (aware)."""
    cursor = _as_utc(start, "start")
    if seconds < 0:
        raise ValueError(f"seconds must be zero or more, got {seconds}")
    if not calendar.weekdays:
        raise ValueError("the calendar has no working weekdays")
    remaining = timedelta(seconds=seconds)
    for opening, closing in _working_windows(cursor, calendar):
        begin = max(cursor, opening)
        if begin >= closing:  # `start` is after closing time on its first day
            continue
        # `<=` keeps a deadline that lands exactly on closing time on that day.
        if remaining <= closing - begin:
            return begin + remaining
        remaining -= closing - begin
    raise ValueError(
        f"no working day within {MAX_IDLE_DAYS} days after {start.isoformat()}: "
        "check the calendar's weekdays and holidays"
    )


def working_seconds_between(
    start: datetime, end: datetime, calendar: Calendar = DEFAULT_CALENDAR
) -> int:
    """Working seconds in [start, end) — used for 'time left' displays and reminders at fractions."""
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    zone = ZoneInfo(calendar.tz)
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = timedelta(0)
    for offset in range((last - first).days + 1):
        window = _window(first + timedelta(days=offset), calendar, zone)
        if window is not None:
            overlap = min(window[1], end) - max(window[0], start)
            total += max(overlap, timedelta(0))
    return total // _ONE_SECOND


def _as_utc(moment: datetime, name: str) -> datetime:
    """`moment` in UTC, or ValueError when it is naive."""
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _window(day: date, calendar: Calendar, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """UTC opening and closing of `day` (a local date), or None when there is no work that day."""
    if day.weekday() not in calendar.weekdays or day in calendar.holidays:
        return None
    # A wall-clock time skipped or repeated by DST resolves with fold=0 (the earlier offset).
    opening = datetime.combine(day, calendar.work_start, zone).astimezone(UTC)
    closing = datetime.combine(day, calendar.work_end, zone).astimezone(UTC)
    return opening, closing


def _working_windows(after: datetime, calendar: Calendar) -> Iterator[tuple[datetime, datetime]]:
    """UTC windows of working days from the local date of `after`; stops after MAX_IDLE_DAYS idle."""
    zone = ZoneInfo(calendar.tz)
    day, idle = after.astimezone(zone).date(), 0
    while idle <= MAX_IDLE_DAYS:
        window = _window(day, calendar, zone)
        if window is None:
            idle += 1
        else:
            idle = 0
            yield window
        day += timedelta(days=1)
