"""Answers to tasks through the API: the completion body, read and checked, and a person's
decision made with a token (docs/security.md, deciding human tasks through the API)."""

from dataclasses import dataclass

from django.http import HttpRequest

from .. import runtime
from ..models import ApiToken, StepRun, WorkflowInstance
from ..runtime.callbacks import names_task
from .api_input import field, json_body
from .auth import ApiError, require_scope

RESULT_MAX = 64


@dataclass(frozen=True, slots=True)
class Answer:
    """A completion body: the result, the step's output, a decision's reason and note."""

    result: str
    data: dict
    reason: str
    note: str

    def fields(self) -> dict:
        return {"result": self.result, "data": self.data, "reason": self.reason, "note": self.note}


def read_answer(request: HttpRequest, run: StepRun) -> Answer:
    """The completion body, checked; `taskId`, when present, must be this task."""
    body = json_body(request)
    named = field(body, "taskId", str, default=str(run.pk))
    if not names_task(named, run.pk):
        raise ApiError(400, "invalid_request", f"'taskId' {named} is not the task {run.pk}")
    result = field(body, "result", str, required=True).strip()
    data = field(body, "data", dict, default={})
    reason = field(body, "reason", str, default="")
    note = field(body, "note", str, default="")
    if not result or len(result) > RESULT_MAX:
        raise ApiError(400, "invalid_request", f"'result' must be 1 to {RESULT_MAX} characters")
    return Answer(result, data, reason, note)


def decide(run: StepRun, token: ApiToken, answer: Answer) -> WorkflowInstance:
    """A human task decided with a token: the decide scope, then, when the token acts for a
    person, that person's checks (group, claims, separation of duties, the step's outcomes);
    a token acting for no one decides as itself, with the step's outcomes only."""
    require_scope(token, ApiToken.Scope.DECIDE, run.instance.pinned.key)
    if token.acting_for_id:
        return runtime.decide_task(run_id=run.pk, user=token.acting_for, **answer.fields())
    actor = f"token:{token.name}"
    return runtime.decide_task_as(run_id=run.pk, actor=actor, **answer.fields())
