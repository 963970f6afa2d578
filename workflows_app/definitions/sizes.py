"""Sizes as files and settings write them: 10MB, 512KB, 2MiB, 1048576. Pure."""

import re

# Binary multiples, as people expect of a "10MB" limit on a file: KB and KiB are both 1024.
_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2}
_UNITS |= {"gb": 1024**3, "gib": 1024**3}
_SIZE = re.compile(r"(?P<n>\d+)\s*(?P<unit>[a-z]*)")
MAX_SIZE = 10 * 1024**3  # a typo such as 100GB for a document limit is refused
SIZE_HINT = "use a whole number with a unit, e.g. 10MB, 512KB or 2MiB"


def parse_size(value: object) -> int:
    """Bytes of '10MB', '512KB', '2MiB', 1048576; ValueError with a plain message."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a size; {SIZE_HINT}")
    found = _SIZE.fullmatch(str(value).strip().lower())
    if found is None or found["unit"] not in _UNITS:
        raise ValueError(f"'{value}' is not a size; {SIZE_HINT}")
    size = int(found["n"]) * _UNITS[found["unit"]]
    if size == 0:
        raise ValueError(f"'{value}' is zero; a size must be larger than zero")
    if size > MAX_SIZE:
        raise ValueError(f"'{value}' is too large; the largest size allowed is 10GB")
    return size


def format_size(size: int) -> str:
    """A size for people: '10 MB', '512 KB', '900 bytes' (binary multiples, as parse_size)."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            amount = size / factor
            return (
                f"{amount:.0f} {unit}"
                if amount >= 10 or amount.is_integer()
                else f"{amount:.1f} {unit}"
            )
    return f"{size} bytes"
