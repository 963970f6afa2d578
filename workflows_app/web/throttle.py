"""Limits per client address, counted in the shared cache: anonymous starts of public
workflows, and case-number lookups on /track/ (the sign-in limit is ratelimit.py's own).

Each limit counts in fixed windows (`HMS_..._WINDOW_SECONDS`): a client that has used its
`HMS_..._PER_WINDOW` waits until its window ends (`Retry-After`). The default cache is shared
by every process (a file cache on one machine, Redis at scale), so the limit holds across
gunicorn workers and machines; `add` + `incr` count atomically on Redis.
"""

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

KEY_PREFIX = "hms:throttle:"


@dataclass(frozen=True, slots=True)
class Throttle:
    """One limit: its name (in cache keys) and the settings holding its count and window."""

    name: str
    per_window_setting: str
    window_setting: str

    @property
    def per_window(self) -> int:
        return getattr(settings, self.per_window_setting)

    @property
    def window(self) -> int:
        return getattr(settings, self.window_setting)

    def wait(self, client: str, *, now: float | None = None) -> int:
        """Seconds until `client` may go on; 0 when it may now."""
        now = time.time() if now is None else now
        if (cache.get(self._key(client, now)) or 0) < self.per_window:
            return 0
        return max(1, math.ceil(self._window_end(now) - now))

    def count(self, client: str, *, now: float | None = None) -> int:
        """Count one request of `client` in the current window; returns the count."""
        now = time.time() if now is None else now
        key = self._key(client, now)
        cache.add(key, 0, timeout=math.ceil(self._window_end(now) - now) + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=self.window)
            return 1

    def _window_end(self, now: float) -> float:
        return (now // self.window + 1) * self.window

    def _key(self, client: str, now: float) -> str:
        # Hashed: addresses stay unreadable in the cache, and any text makes a valid key.
        digest = hashlib.sha256(f"{self.name}\n{client}".encode()).hexdigest()
        return f"{KEY_PREFIX}{self.name}:{digest}:{int(now // self.window)}"


PUBLIC_STARTS = Throttle(
    "public-starts", "HMS_PUBLIC_STARTS_PER_WINDOW", "HMS_PUBLIC_WINDOW_SECONDS"
)
CASE_LOOKUPS = Throttle("case-lookups", "HMS_LOOKUPS_PER_WINDOW", "HMS_LOOKUP_WINDOW_SECONDS")
