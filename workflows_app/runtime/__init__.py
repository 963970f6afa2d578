"""The only writers of instances and step runs: lock or guard, apply the engine, record, enqueue.

Every change of an instance is one transaction together with its history: the step-run row
(a finished run is the history entry of that step) or an Event row. Writes are guarded by the
state they expect (`UPDATE … WHERE state = …`), so a duplicate message, a late callback or a
racing sweep changes nothing twice. Jobs are enqueued only after commit (queue.py).

- lifecycle: start, cancel, retry an instance
- steps: open a run, claim it, record a dispatch outcome, route onwards
- execution: the step loop of a worker, and python steps run in the caller after its commit
- answers: a person's decision or a service's callback completing a waiting run
- dispatch, outbound, concurrency: one call to a service (python or HTTP), every HTTP request
  we send (a deadline, public addresses only), and the limit of calls in flight per service
- assignment, permissions, decisions: human tasks (who may act; claim, release, decide,
  reassign), escalation: overdue tasks up the ladder
- sweep, ticker, schedules: deadlines and retries (the sweep), the thread in every worker
  that runs it, the django-q2 schedules and heartbeats
- asking, replies, documents, clock: requests to the applicant (the emailed link, the
  deadline paused), their answers, the documents sent with them, the deadline's clock
- callbacks: signed callbacks verified; notifications: emails after commit
- guards, queue: the guarded writes they share, and the one seam to django-q2
"""

from ..engine import TransitionNotAllowed
from .answers import InvalidDecision, complete_task
from .asking import LinkRefused, TooManyLinks, is_request, run_for_link, send_new_link
from .decisions import claim_task, decide_task, decide_task_as, reassign_task, release_task
from .documents import DocumentRefused, add_document
from .guards import Claimed
from .lifecycle import (
    IdempotencyConflict,
    InvalidPayload,
    cancel_instance,
    retry_instance,
    start_instance,
)
from .permissions import NotAllowed
from .replies import SUBMITTED, NotARequest, answer_request
from .steps import claim_run, record_late_answer, record_outcome
from .sweep import process_due, wake_run

__all__ = [
    "SUBMITTED",
    "Claimed",
    "DocumentRefused",
    "LinkRefused",
    "NotARequest",
    "TooManyLinks",
    "IdempotencyConflict",
    "InvalidDecision",
    "InvalidPayload",
    "NotAllowed",
    "TransitionNotAllowed",
    "add_document",
    "answer_request",
    "cancel_instance",
    "claim_run",
    "claim_task",
    "complete_task",
    "decide_task",
    "decide_task_as",
    "is_request",
    "process_due",
    "reassign_task",
    "record_late_answer",
    "record_outcome",
    "release_task",
    "retry_instance",
    "run_for_link",
    "send_new_link",
    "start_instance",
    "wake_run",
]
