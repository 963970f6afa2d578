"""The applicant's side of a request: the form the emailed link opens, a new link, their documents.

`/track/{instanceId}/respond/{token}/` is the tracker with the request's form; the token is
the signed, expiring link (runtime/asking.py). The form works without JavaScript: a POST
answers, with errors on their fields and what was typed kept; after an answer the same link
shows that it was received and the documents sent. Files are read up to HMS_MAX_UPLOAD here
(web/uploads.py), and only here and in the API's documents endpoint.
"""

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from .. import runtime
from ..engine import InvalidAnswer, TransitionNotAllowed
from ..models import RunState, StepRun
from ..queries import progress
from ..runtime import asking, replies
from .files import download
from .request_display import AnswerForm
from .tracker import TRACK, HtmxHttpRequest, not_found, poll_answer, tracker_context
from .uploads import accepts_uploads


@require_http_methods(["GET", "POST"])
@never_cache
@vary_on_headers("HX-Request")
@accepts_uploads
def respond(request: HtmxHttpRequest, instance_id: str, token: str) -> HttpResponse:
    """The tracker with the request's form (GET), and the answer (POST)."""
    run = _run_or_refusal(request, instance_id, token)
    if isinstance(run, HttpResponse):
        return run
    instance, runs = progress.instance_with_runs(run.instance.uuid)
    run = next(r for r in runs if r.pk == run.pk)
    context = {**tracker_context(instance, runs, now=timezone.now()), "responding": True}
    if request.htmx and request.method == "GET":
        return poll_answer(request, instance, context)
    form, status = AnswerForm(replies.form_of_run(run)), 200
    if request.method == "POST":
        form = AnswerForm(replies.form_of_run(run), request.POST, request.FILES)
        status = _answer(form, run)
        if status == 303:
            return redirect(request.path)
    return render(request, TRACK, {**context, **_answer_context(run, form, token)}, status=status)


def _answer(form: AnswerForm, run: StepRun) -> int:
    """Complete the request with the form's answer: 303, or 400/409 with the refusals on the
    form (a request is answered once: a second answer changes nothing)."""
    try:
        if run.state != RunState.WAITING:
            raise TransitionNotAllowed("answered already")
        if not form.is_valid():
            return 400
        values, files = form.answer()
        runtime.answer_request(
            run=run, data=values, uploads=files, actor="applicant", language=get_language()
        )
    except InvalidAnswer as invalid:
        form.add_problems(invalid.problems)
        return 400
    except TransitionNotAllowed:
        run.refresh_from_db()
        form.add_error(None, _("This request has already been answered; nothing was changed."))
        return 409
    return 303


def _answer_context(run: StepRun, form: AnswerForm, token: str) -> dict:
    return {
        "request_run": run,
        "answer_form": form,
        "token": token,
        "sent_documents": progress.documents_of(run.instance),
    }


def _run_or_refusal(request: HttpRequest, instance_id: str, token: str) -> StepRun | HttpResponse:
    """The request the link answers, or the page that says why the link does not work."""
    key = progress.public_id(instance_id)
    if key is None:
        return not_found(request)
    try:
        return runtime.run_for_link(key, token)
    except runtime.LinkRefused as refused:
        if not refused.expired:
            return not_found(request)
    instance = progress.instance_by_uuid(key)
    return render(request, "workflows_app/respond_expired.html", {"instance": instance}, status=410)


@require_POST
def new_link(request: HttpRequest, instance_id: str) -> HttpResponse:
    """Email the applicant a fresh link to answer the open request (rate limited)."""
    instance, runs = progress.instance_with_runs(instance_id)
    if instance is None:
        return not_found(request)
    run = asking.open_request(instance, runs)
    outcome = "sent"
    try:
        if run is None:
            raise TransitionNotAllowed("nothing to answer")
        runtime.send_new_link(instance=instance, run=run)
    except runtime.TooManyLinks:
        outcome = "later"
    except TransitionNotAllowed:
        outcome = "closed"
    return redirect(f"{instance.tracker_url}?link={outcome}#request")


@never_cache
def applicant_document(
    request: HttpRequest, instance_id: str, token: str, document_id: UUID
) -> HttpResponse:
    """A document of the application, to the holder of a valid link for it."""
    run = _run_or_refusal(request, instance_id, token)
    if isinstance(run, HttpResponse):
        return run
    document = progress.document_by_id(document_id)
    if document is None or document.instance_id != run.instance_id:
        raise Http404("no such document")
    return download(document)
