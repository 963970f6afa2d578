"""Durations as workflow files write them: 90s, 48h, PT48H, '2 working days'. Pure."""

import re
from dataclasses import dataclass, field
from datetime import timedelta

WORKING_DAY_HOURS = 8  # a working day is 8 working hours on the business calendar
MAX_DAYS = 3650  # catches typos such as 4800d and keeps datetime arithmetic in range
DURATION_HINT = "use 90s, 30m, 48h, 2d, PT48H or '2 working days'"

_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_WORD_SECONDS = {"week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}
_WORKING_SECONDS = {"day": WORKING_DAY_HOURS * 3600, "hour": 3600, "minute": 60}
_SHORT = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_ISO = re.compile(
    r"p(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:t(?=\d)(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?)?"
)
_ISO_CALENDAR = re.compile(r"p(?:\d+[wd])*\d+[ym](?:\d+[ymwd])*(?:t[\dhms]+)?")
_WORDS = re.compile(r"(?P<n>\d+) (?P<working>working )?(?P<unit>week|day|hour|minute|second)s?")


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time: wall-clock seconds, or working seconds when `working` is set."""

    seconds: int  # wall-clock seconds; or WORKING seconds when working=True
    working: bool = False
    text: str = field(default="", compare=False)  # as written in the source, e.g. "48h"

    @property
    def timedelta(self) -> timedelta:
        """The wall-clock length (for working time, the engine uses the business calendar)."""
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text or f"{self.seconds}s"


def parse_duration(value: object) -> Duration:
    """Parse 90s, 1h30m, PT48H, '2 days', '2 working days'; ValueError with a plain message."""
    if isinstance(value, bool) or value is None or not isinstance(value, str | int | float):
        shown = "null" if value is None else _shown(value)
        raise ValueError(f"{shown} is not a duration; {DURATION_HINT}")
    if isinstance(value, float):
        raise ValueError(f"{value} is a number without a unit; {DURATION_HINT}")
    if isinstance(value, int):
        raise ValueError(f"{value} has no unit; write {value}s, {value}m, {value}h or {value}d")
    text = value.strip()
    if not text:
        raise ValueError(f"the duration is empty; {DURATION_HINT}")
    seconds, working = _match(" ".join(text.lower().split()), text)
    if seconds == 0:
        raise ValueError(f"'{text}' is zero; a duration must be longer than zero")
    if seconds > MAX_DAYS * 86400:
        raise ValueError(f"'{text}' is too long; the longest duration allowed is {MAX_DAYS} days")
    return Duration(seconds, working=working, text=text)


def _match(low: str, text: str) -> tuple[int, bool]:
    """(seconds, working) for a lower-cased, space-normalised duration, or ValueError."""
    if low.startswith("-"):
        raise ValueError(f"'{text}' is negative; a duration must be longer than zero")
    if low and (found := _SHORT.fullmatch(low)):
        return _sum(found), False
    if len(low) > 1 and (found := _ISO.fullmatch(low)):
        return _sum(found), False
    if found := _WORDS.fullmatch(low):
        return _words(found, text), bool(found["working"])
    if "." in low or "," in low:
        raise ValueError(f"'{text}' has a fraction; use whole units, e.g. 90m instead of 1.5h")
    if _ISO_CALENDAR.fullmatch(low):
        raise ValueError(
            f"'{text}' uses years or months, which vary in length; write days instead, e.g. P30D"
        )
    raise ValueError(f"'{text}' is not a duration; {DURATION_HINT}")


def _sum(found: re.Match[str]) -> int:
    """Total seconds of the named unit groups of a short or ISO 8601 match."""
    return sum(int(n) * _UNIT_SECONDS[unit] for unit, n in found.groupdict().items() if n)


def _words(found: re.Match[str], text: str) -> int:
    """Seconds of '2 days' or working seconds of '2 working days'."""
    n, unit = int(found["n"]), found["unit"]
    if not found["working"]:
        return n * _WORD_SECONDS[unit]
    if unit not in _WORKING_SECONDS:
        raise ValueError(f"'{text}': working time is counted in working days, hours or minutes")
    return n * _WORKING_SECONDS[unit]


def _shown(value: object) -> str:
    """A short description of a non-scalar value for messages."""
    match value:
        case bool():
            return str(value).lower()
        case list() | tuple():
            return "a list"
        case dict():
            return "a mapping"
        case _:
            return repr(value)
