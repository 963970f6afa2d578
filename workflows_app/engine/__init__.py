"""The rules, pure: no database, no network, no clock. Every function takes what it needs and
returns a decision, so the rules are tested exhaustively with SimpleTestCase.

- moves: where an instance goes (the first step; after a result: on, next, conditions, terminals)
- timeouts: what a passed time-out does (escalate, fail, skip, retry), retry backoff, due times
- working_time: arithmetic on a business calendar
"""

from .moves import (
    REFUSAL,
    TERMINAL_STATUS,
    Move,
    TransitionNotAllowed,
    advance,
    chosen_by_result,
    move_to,
    start,
)
from .timeouts import (
    DEFAULT_RETRY,
    MAX_BACKOFF_SECONDS,
    TimeoutAction,
    due_time,
    earliest,
    on_timeout,
    retry_delay,
)

__all__ = [
    "DEFAULT_RETRY",
    "MAX_BACKOFF_SECONDS",
    "REFUSAL",
    "TERMINAL_STATUS",
    "Move",
    "TimeoutAction",
    "TransitionNotAllowed",
    "advance",
    "chosen_by_result",
    "due_time",
    "earliest",
    "move_to",
    "on_timeout",
    "retry_delay",
    "start",
]
