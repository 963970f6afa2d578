"""The rules, pure: no database, no network, no clock. Every function takes what it needs and
returns a decision, so the rules are tested exhaustively with SimpleTestCase.

- moves: where an instance goes (the first step; after a result: on, next, conditions, terminals)
- lanes: where an instance is while parallel branches run; branch ends, joins, cancellations,
  the end of a child instance (docs/parallel.md)
- timeouts: what a passed time-out does (escalate, fail, skip, retry), retry backoff, due times
- deadlines: the statutory deadline, paused while the applicant is asked
- answers: an applicant's answer checked against the form they were sent
- working_time: arithmetic on a business calendar
"""

from .answers import DocumentFacts, InvalidAnswer, check_answer
from .deadlines import DeadlineState, deadline_state, resumed
from .lanes import (
    CHILD_RESULTS,
    JOIN_RESULT,
    Cancel,
    Lanes,
    Plan,
    Position,
    after_child,
    after_end,
    after_failure,
    after_result,
    begin,
    enter,
    in_definition_order,
    lanes_after,
)
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
    "CHILD_RESULTS",
    "DEFAULT_RETRY",
    "CHILD_RESULTS",
    "DeadlineState",
    "DocumentFacts",
    "InvalidAnswer",
    "JOIN_RESULT",
    "MAX_BACKOFF_SECONDS",
    "REFUSAL",
    "TERMINAL_STATUS",
    "Cancel",
    "Lanes",
    "Move",
    "Plan",
    "Position",
    "TimeoutAction",
    "TransitionNotAllowed",
    "advance",
    "after_child",
    "after_end",
    "after_failure",
    "after_result",
    "begin",
    "chosen_by_result",
    "check_answer",
    "deadline_state",
    "due_time",
    "earliest",
    "enter",
    "in_definition_order",
    "lanes_after",
    "move_to",
    "on_timeout",
    "resumed",
    "retry_delay",
    "start",
]
