"""Forms of the admin: drafts and their steps (checked by the one validator), files, reasons."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from ..authoring import drafts, dryrun
from ..models import DraftStep, Service, WorkflowDraft
from .placing import place

CHECK_BUTTONS = frozenset({"_validate", "_publish"})
_SMALL = forms.Textarea(attrs={"rows": 2, "cols": 60})


class DraftForm(forms.ModelForm):
    class Meta:
        model = WorkflowDraft
        fields = ("key", "name", "description", "public", "input_schema")
        widgets = {"description": _SMALL, "input_schema": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The steps' formset checks the whole draft and places workflow-level problems here.
        self.instance._draft_form = self


class DraftStepForm(forms.ModelForm):
    class Meta:
        model = DraftStep
        fields = (
            "position",
            "step_id",
            "service",
            "title",
            "description",
            "timeout",
            "on_timeout",
            "escalate_to",
            "assignee",
            "retry_max",
            "retry_backoff",
            "next",
            "on",
        )
        widgets = {name: _SMALL for name in ("description", "escalate_to", "next", "on")}


def service_field(draft: WorkflowDraft | None) -> forms.ChoiceField:
    """A choice of the registered services (plus names the draft uses that are not registered)."""
    registered = list(Service.objects.values_list("name", "kind"))
    choices = [("", "---------")] + [(name, f"{name} ({kind})") for name, kind in registered]
    if draft is not None and draft.pk:
        known = {name for name, _ in registered}
        used = draft.steps.exclude(service__in=known).values_list("service", flat=True)
        choices += [(name, f"{name} (not registered)") for name in sorted(set(used))]
    field = DraftStep._meta.get_field("service")
    return forms.ChoiceField(choices=choices, help_text=field.help_text, label="Service")


class DraftStepFormSet(BaseInlineFormSet):
    """Steps of a draft; with Validate or Publish, the whole draft goes through the validator."""

    def clean(self):
        super().clean()
        main = getattr(self.instance, "_draft_form", None)
        if not CHECK_BUTTONS & set(self.data) or any(form.errors for form in self.forms):
            return
        if main is not None and main.errors:
            return
        rows = [f for f in self.forms if f.cleaned_data and not self._should_delete_form(f)]
        rows = drafts.ordered([{**f.cleaned_data, "_form": f} for f in rows])
        fields = {name: getattr(self.instance, name) for name in drafts.DRAFT_FIELDS}
        document = drafts.workflow_document(fields, rows)
        _, problems = drafts.check(document, source=f"draft {fields['key']}")
        if problems:
            raise ValidationError(self._place(problems, rows, main))

    def _place(self, problems, rows, main) -> list[str]:
        """Put each problem on its field; return what concerns no single field, and a summary."""
        general = []
        for placed in place(problems, [row.get("step_id") or "" for row in rows]):
            if placed.row is not None and placed.row < len(rows) and placed.field:
                rows[placed.row]["_form"].add_error(placed.field, placed.message)
            elif placed.row is None and placed.field and main is not None:
                main.add_error(placed.field, placed.message)
            else:
                where = f"step #{placed.row + 1}: " if placed.row is not None else ""
                general.append(f"{where}{placed.message}")
        count = len(problems)
        summary = (
            f"The draft has {count} problem{'s' if count != 1 else ''}; each is shown on its field."
        )
        return [summary, *general]


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A workflow definition in JSON (.json) or YAML (.yaml, .yml).")
    replace = forms.BooleanField(
        required=False, help_text="Replace the draft of a workflow that already has one."
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 1024 * 1024:
            raise ValidationError("The file is larger than 1 MiB.")
        try:
            return upload.name, upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text.") from None


class DryRunForm(forms.Form):
    payload = forms.JSONField(
        initial=dict,
        required=False,  # {} is a payload too (a form field would call it empty)
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text='The application as JSON, e.g. {"applicant": "Ann", "docs": true}.',
    )
    results = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text='One line per step visit, in order: "step: result", optionally followed by '
        'the data the step outputs as JSON, e.g. validate: ok {"score": 7}',
    )

    def clean_payload(self):
        payload = self.cleaned_data["payload"]
        if payload is None:
            return {}
        if not isinstance(payload, dict):
            raise ValidationError("The payload must be a JSON object: {...}.")
        return payload

    def clean_results(self):
        try:
            return dryrun.parse_answers(self.cleaned_data["results"])
        except dryrun.BadAnswers as exc:
            raise ValidationError(str(exc)) from None


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=1000,
        help_text="Recorded in the history of each instance, with your name.",
    )


class ReassignForm(ReasonForm):
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        to_field_name="name",
        help_text="Give the task to everyone in this group...",
    )
    user = forms.CharField(
        required=False, max_length=150, help_text="...or to this user (username)."
    )

    field_order = ("group", "user", "reason")

    def clean(self):
        data = super().clean()
        group, username = data.get("group"), (data.get("user") or "").strip()
        if bool(group) == bool(username):
            raise ValidationError("Choose a group or a user (one of them).")
        if (
            username
            and not get_user_model().objects.filter(username=username, is_active=True).exists()
        ):
            self.add_error("user", f"There is no active user '{username}'.")
        data["to"] = f"group:{group.name}" if group else f"user:{username}"
        return data
