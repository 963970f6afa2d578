"""What the tracker shows of a request to the applicant: the deadline, the notice that we
need something, and the form the emailed link opens (docs/pages.md, requests)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext as _

from ..definitions import FormField, format_size, in_language
from ..engine import DeadlineState
from ..models import StepRun, WorkflowInstance
from ..queries import catalog, progress
from ..runtime import asking
from ..runtime.documents import max_upload

# MIME types and extensions a browser's file picker offers for each document type.
PICKER = {
    "pdf": ".pdf,application/pdf",
    "png": ".png,image/png",
    "jpg": ".jpg,.jpeg,image/jpeg",
    "gif": ".gif,image/gif",
    "webp": ".webp,image/webp",
    "tif": ".tif,.tiff,image/tiff",
    "heic": ".heic,image/heic",
}


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A request to the applicant that waits for their answer."""

    run: StepRun
    title: str
    description: str


def request_context(instance: WorkflowInstance, runs: list[StepRun], *, now: datetime) -> dict:
    """The deadline and the open request, for the tracker's `deadline` and `request` partials."""
    run = asking.open_request(instance, runs)
    request = None
    if run is not None:
        step = catalog.spec_of(instance).step(run.step_id)
        request = OpenRequest(run, step.display_title, step.display_description)
    deadline: DeadlineState | None = None
    if not instance.is_finished:
        deadline = progress.deadline_of(instance, now=now)
    return {"deadline": deadline, "open_request": request}


class AnswerForm(forms.Form):
    """The request's fields as a Django form: parsed, with errors on each field."""

    def __init__(self, form: tuple[FormField, ...], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, label_suffix="", **kwargs)
        self.spec = form
        for field in form:
            self.fields[field.name] = _form_field(field)

    def answer(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the values, the uploaded files) from the cleaned form."""
        values, files = {}, {}
        for field in self.spec:
            value = self.cleaned_data.get(field.name)
            if field.type == "file":
                if value:
                    files[field.name] = value
            elif value not in (None, ""):
                values[field.name] = _plain(value)
        return values, files

    def add_problems(self, problems: dict[str, str]) -> None:
        """Put the runtime's refusals on their fields (a file must then be chosen again)."""
        for name, message in problems.items():
            again = " " + _("Choose the file again.") if name in self.files else ""
            self.add_error(
                name if name in self.fields else None, message[:1].upper() + message[1:] + again
            )


def _form_field(field: FormField) -> forms.Field:
    label = field.display_label
    common = {"label": label, "required": field.required}
    match field.type:
        case "text":
            return forms.CharField(max_length=1000, **common)
        case "textarea":
            return forms.CharField(
                max_length=10_000, widget=forms.Textarea(attrs={"rows": 5}), **common
            )
        case "number":
            return forms.DecimalField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
        case "date":
            return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        case "choice":
            choices = [(value, in_language(text)) for value, text in field.choices]
            return forms.ChoiceField(choices=choices, widget=forms.RadioSelect, **common)
    largest = min(field.max_size or max_upload(), max_upload())
    picker = ",".join(PICKER[kind] for kind in field.accept)
    types = ", ".join(k.upper() for k in field.accept)
    hint = _("%(types)s, up to %(size)s") % {"types": types, "size": format_size(largest)}
    return forms.FileField(
        widget=forms.FileInput(attrs={"accept": picker}), help_text=hint, **common
    )


def _plain(value: Any) -> Any:
    """A cleaned value as JSON keeps it: a date as YYYY-MM-DD, a number as int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
