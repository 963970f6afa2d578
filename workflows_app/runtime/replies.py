"""The applicant's reply to a request: the form's answers and files, completing the step once.

The tracker's form sends files with the answer; a portal sends document ids it uploaded
before (POST /api/workflows/{id}/documents). Either way the answer is checked against the
form (engine.check_answer), the files are stored, and the step completes with the result
`submitted` and the answer in `context[step]`, all in one transaction: a refused or a second
answer leaves no row and no file, and is recorded as a late answer.
"""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from .. import engine
from ..definitions import FormField
from ..engine import InvalidAnswer, TransitionNotAllowed
from ..models import CaseDocument, ServiceKind, StepRun, WorkflowInstance
from ..queries import catalog
from . import documents
from .answers import complete_task
from .steps import record_late_answer

SUBMITTED = "submitted"


class NotARequest(Exception):
    """The task is not a request to the applicant (it is a person's or a service's)."""


def form_of_run(run: StepRun) -> tuple[FormField, ...]:
    """What the request `run` asks; NotARequest for any other kind of step."""
    spec = catalog.spec_of(run.instance)
    if not catalog.runs_service(spec, run.step_id, ServiceKind.APPLICANT):
        raise NotARequest(f"step '{run.step_id}' is not a request to the applicant")
    return catalog.form_of(catalog.service_of_step(spec, run.step_id))


def answer_request(
    *,
    run: StepRun,
    data: Mapping[str, Any],
    uploads: Mapping[str, UploadedFile] | None = None,
    actor: str,
    language: str = "",
) -> WorkflowInstance:
    """Complete the request `run` with the applicant's answer; InvalidAnswer names each field
    that is wrong, TransitionNotAllowed says it was answered or closed already. `language`,
    the page's, becomes the application's (its emails are written in it from now on)."""
    form = form_of_run(run)
    uploads = dict(uploads or {})
    answer, judged = _checked(form, run, data, uploads)
    stored: list[CaseDocument] = []
    try:
        with transaction.atomic():
            for name, facts in judged.items():
                document = documents.store(
                    instance=run.instance,
                    upload=uploads[name],
                    facts=facts,
                    step=run.step_id,
                    uploaded_by=actor,
                )
                stored.append(document)
                answer[name] = str(document.pk)
            if language and language != (run.instance.language or settings.LANGUAGE_CODE):
                WorkflowInstance.objects.filter(pk=run.instance_id).update(language=language)
                run.instance.language = language
            return complete_task(
                run_id=run.pk, result=SUBMITTED, data=answer, actor=actor, seen=run
            )
    except TransitionNotAllowed as refused:
        documents.discard(stored)
        # The late answer complete_task recorded was rolled back with the rest: record it now.
        record_late_answer(run=run, result=SUBMITTED, actor=actor, reason=str(refused))
        raise
    except BaseException:
        documents.discard(stored)
        raise


def _checked(form, run: StepRun, data: Mapping[str, Any], uploads: Mapping[str, UploadedFile]):
    """(the answer, each upload's facts); InvalidAnswer with every problem of both."""
    judged, refused = _judge_uploads(form, uploads)
    pending = {name: f"upload:{name}" for name in judged}
    known = {**documents.facts_of(run.instance), **{pending[n]: f for n, f in judged.items()}}
    try:
        answer = engine.check_answer(
            form, {**data, **pending}, known, max_upload=documents.max_upload()
        )
    except InvalidAnswer as invalid:
        raise InvalidAnswer({**invalid.problems, **refused}) from None
    if refused:
        raise InvalidAnswer(refused)
    return answer, judged


def _judge_uploads(
    form: tuple[FormField, ...], uploads: Mapping[str, UploadedFile]
) -> tuple[dict[str, engine.DocumentFacts], dict[str, str]]:
    """Each upload's facts, and why each refused one is refused."""
    fields = {field.name: field for field in form}
    judged, problems = {}, {}
    for name, upload in uploads.items():
        field = fields.get(name)
        if field is None or field.type != "file":
            problems[name] = f"this request does not ask for a file '{name}'"
            continue
        try:
            judged[name] = documents.judge(upload, accept=field.accept, max_size=field.max_size)
        except documents.DocumentRefused as refused:
            problems[name] = str(refused)
    return judged, problems


def request_of(run_id: UUID) -> StepRun:
    """The run `run_id` with its instance (DoesNotExist when there is none)."""
    return StepRun.objects.select_related("instance").get(pk=run_id)
