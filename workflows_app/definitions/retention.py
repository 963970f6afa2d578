"""`retention`: how long an ended application's personal data is kept (docs/records.md). Pure.

Unlike a step's `timeout`, retention is counted in calendar years and months as records
schedules are written (`P7Y`, `P6M`, `P1Y6M`, `7 years`), or in days and weeks (`90d`, `P90D`).
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

RETENTION_HINT = "use e.g. P7Y, P6M, P1Y6M, 90d, P90D or '7 years'"
MAX_YEARS = 200

_ISO = re.compile(r"p(?:(?P<y>\d+)y)?(?:(?P<mo>\d+)m)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?")
_SHORT = re.compile(r"(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?")
_WORDS = re.compile(r"(?P<n>\d+) (?P<unit>year|month|week|day)s?")


@dataclass(frozen=True, slots=True)
class Retention:
    """Calendar months plus days after the end of an instance."""

    months: int = 0
    days: int = 0
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or f"P{self.months}M{self.days}D"

    def expires(self, ended: datetime) -> datetime:
        """When an instance that ended at `ended` passes its retention."""
        return _add_months(ended, self.months) + timedelta(days=self.days)

    def cutoff(self, now: datetime) -> datetime:
        """Instances that ended at or before this moment have passed their retention."""
        return _add_months(now - timedelta(days=self.days), -self.months)


def parse_retention(value: object) -> Retention:
    """Parse P7Y, P6M, 90d, '7 years'; ValueError with a plain message."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a retention period; {RETENTION_HINT}")
    text = value.strip()
    low = " ".join(text.lower().split())
    parts = _parts(low)
    if parts is None:
        raise ValueError(f"'{text}' is not a retention period; {RETENTION_HINT}")
    years, months, weeks, days = parts
    months += 12 * years
    days += 7 * weeks
    if months == 0 and days == 0:
        raise ValueError(f"'{text}' is zero; a retention period must be longer than zero")
    if months + days // 30 > MAX_YEARS * 12:
        raise ValueError(f"'{text}' is too long; the longest retention is {MAX_YEARS} years")
    return Retention(months, days, text=text)


def _parts(low: str) -> tuple[int, int, int, int] | None:
    """(years, months, weeks, days) of a lower-cased retention text, or None."""
    for pattern in (_ISO, _SHORT):
        found = pattern.fullmatch(low)
        if found and any(found.groupdict().values()) and (pattern is _ISO) == low.startswith("p"):
            got = {k: int(v) for k, v in found.groupdict().items() if v}
            return got.get("y", 0), got.get("mo", 0), got.get("w", 0), got.get("d", 0)
    if found := _WORDS.fullmatch(low):
        n, unit = int(found["n"]), found["unit"]
        return (
            n if unit == "year" else 0,
            n if unit == "month" else 0,
            n if unit == "week" else 0,
            n if unit == "day" else 0,
        )
    return None


def _add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (or earlier); the 31st becomes the month's last."""
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))
