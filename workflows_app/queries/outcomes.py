"""What was decided, as the documents an instance keeps: `decision` (the latest decision so
far) and `outcome` (what ended it; CONTRACT §3, docs/api.md#outcome), and how the applicant
reads them.

A decision is a person's answer to a task, or a refusal (`rejected`) from any step. When an
instance ends, its outcome is the answer of the step that ended it if that answer chose the end
(a decision, or an `on` entry); otherwise, when a step such as `notify` merely came last, the
latest decision before it. The runtime writes both with the move that records them.
"""

from datetime import datetime
from typing import Any

from ..engine import REFUSAL
from ..models import Status

APPROVAL = "approved"
# The result of a step that emailed the applicant the decision (the built-in notify_applicant).
DECISION_SENT = "sent"
REASONS_MAX = 20  # reasons kept from one answer
REASON_CHARS = 2000  # characters kept of each


def reasons_of(output: Any, reason: str = "") -> list[str]:
    """The plain-language reasons of an answer: its `data.reasons` (text only) and a person's
    `reason`, trimmed, in that order."""
    found = output.get("reasons") if isinstance(output, dict) else None
    texts = [r for r in found if isinstance(r, str)] if isinstance(found, list) else []
    if reason:
        texts.append(reason)
    kept = [text.strip()[:REASON_CHARS] for text in texts if text.strip()]
    return kept[:REASONS_MAX]


def answer_document(
    step: str, result: str, data: Any, *, reason: str = "", at: datetime
) -> dict[str, Any]:
    """The {result, step, reasons, time} of an answer recorded now (a decision, an outcome)."""
    return {"result": result, "step": step, "reasons": reasons_of(data, reason), "time": _iso(at)}


def ending_outcome(status: str, step: str, *, at: datetime) -> dict[str, Any]:
    """The outcome of an instance that failed or was cancelled: no decision, no reasons."""
    return {"result": str(status), "step": step, "reasons": [], "time": _iso(at)}


def verdict(outcome: dict[str, Any] | None, status: str | None = None) -> str:
    """How the applicant reads an outcome: approved, refused, lapsed, completed, failed or
    cancelled; without a status (a decision read while the instance still runs), from its result."""
    result = (outcome or {}).get("result")
    if status in (Status.FAILED, Status.CANCELLED):
        return str(status)
    if result == "timeout" and status in (None, Status.REJECTED):
        return "lapsed"  # the time allowed ran out, e.g. for the applicant's answer
    if result == REFUSAL or status == Status.REJECTED:
        return "refused"
    return "approved" if result == APPROVAL else "completed"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
