"""Drafts in the admin: steps inline, Validate, Publish, import a file, dry run, diagram."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from ..authoring import diagram, drafts, dryrun
from ..definitions import InvalidDefinition
from ..models import DraftStep, Service, WorkflowDraft
from ..queries import catalog
from .forms import DraftForm, DraftStepForm, DraftStepFormSet, DryRunForm, ImportForm, service_field

STEP_FIELDSETS = (
    (None, {"fields": (("position", "step_id", "service"), "title", "description")}),
    ("Time and people", {"fields": (("timeout", "on_timeout"), "escalate_to", "assignee")}),
    ("Retries and routing", {"fields": (("retry_max", "retry_backoff"), "next", "on")}),
)


class DraftStepInline(admin.StackedInline):
    model = DraftStep
    form = DraftStepForm
    formset = DraftStepFormSet
    fieldsets = STEP_FIELDSETS
    extra = 1
    ordering = ("position", "pk")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # A new form class per call: replacing the field here cannot leak between requests.
        formset.form.base_fields["service"] = service_field(obj)
        return formset


@admin.register(WorkflowDraft)
class WorkflowDraftAdmin(admin.ModelAdmin):
    form = DraftForm
    inlines = [DraftStepInline]
    list_display = ("key", "name", "based_on", "updated_at", "updated_by")
    search_fields = ("key", "name")
    readonly_fields = ("based_on", "updated_at", "updated_by")
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "public", "input_schema", "deadline")}),
        ("Publishing", {"fields": ("based_on", "updated_at", "updated_by")}),
    )
    change_form_template = "admin/workflows_app/workflowdraft/change_form.html"
    change_list_template = "admin/workflows_app/workflowdraft/change_list.html"

    def has_publish_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.publish_workflowdraft")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="workflows_app_workflowdraft_import"),
            path(
                "<path:object_id>/dry-run/",
                view(self.dry_run_view),
                name="workflows_app_workflowdraft_dry_run",
            ),
            path(
                "<path:object_id>/export/<str:fmt>/",
                view(self.export_view),
                name="workflows_app_workflowdraft_export",
            ),
            *super().get_urls(),
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        publishing = request.method == "POST" and "_publish" in request.POST
        if publishing and not self.has_publish_permission(request):
            raise PermissionDenied
        return super().changeform_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(self._draft_context(obj))
        context["can_publish"] = self.has_publish_permission(request)
        context["can_check"] = add or self.has_change_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _draft_context(self, draft: WorkflowDraft | None) -> dict:
        """The diagram of the saved draft, and its changes since the version it is based on."""
        if draft is None or draft.pk is None:
            return {}
        document = drafts.draft_document(draft)
        spec, problems = drafts.check(document, source=f"draft {draft.key}")
        context = {"problem_count": len(problems), "document": document}
        if spec is not None:
            kinds = dict(Service.objects.values_list("name", "kind"))
            context["diagram"] = mark_safe(diagram.render_svg(spec, kinds=kinds))  # escaped inside
        base = draft.based_on or catalog.latest_definition(draft.key)
        if base is not None:
            context["base"] = base
            context["changes"] = drafts.diff(
                base.source, document, old_label=str(base), new_label=f"draft {draft.key}"
            )
        return context

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        """Save the steps; a step left without a position goes after the others."""
        steps = formset.save(commit=False)
        for gone in formset.deleted_objects:
            gone.delete()
        numbered = [s.position for s in form.instance.steps.all() if s.position is not None]
        top = max([*numbered, *(s.position for s in steps if s.position is not None)], default=0)
        for step in steps:
            if step.position is None:
                top += 10
                step.position = top
            step.save()
        formset.save_m2m()

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj) or super().response_add(
            request, obj, post_url_continue
        )

    def response_change(self, request, obj):
        return self._after_save(request, obj) or super().response_change(request, obj)

    def _after_save(self, request, obj: WorkflowDraft):
        """Validate: say so and stay; Publish: freeze a new version and show it."""
        here = reverse("admin:workflows_app_workflowdraft_change", args=[obj.pk])
        if "_validate" in request.POST:
            self.message_user(
                request, f"The draft {obj.key} is valid and ready to publish.", messages.SUCCESS
            )
            return HttpResponseRedirect(here)
        if "_publish" not in request.POST:
            return None
        try:
            definition, created = drafts.publish_draft(obj, actor=request.user.get_username())
        except InvalidDefinition as refused:
            for problem in refused.problems:
                self.message_user(request, str(problem), messages.ERROR)
            return HttpResponseRedirect(here)
        text = (
            f"Published {definition}."
            if created
            else f"No change since {definition}; nothing published."
        )
        if created:  # the version's History then says who published it, and from which draft
            self.log_addition(request, definition, f"Published from the draft {obj.key}.")
        self.message_user(request, text, messages.SUCCESS if created else messages.WARNING)
        url = reverse("admin:workflows_app_workflowdefinition_change", args=[definition.pk])
        return HttpResponseRedirect(url)

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        problems = []
        if request.method == "POST" and form.is_valid():
            name, text = form.cleaned_data["file"]
            try:
                specs = drafts.import_text(text, filename=name)
            except InvalidDefinition as refused:
                problems = refused.problems
            else:
                return self._save_imported(request, specs, replace=form.cleaned_data["replace"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "problems": problems,
            "title": "Import a workflow file",
        }
        return TemplateResponse(request, "admin/workflows_app/workflowdraft/import.html", context)

    def _save_imported(self, request, specs, *, replace: bool):
        taken = set(
            WorkflowDraft.objects.filter(key__in=[s.id for s in specs]).values_list(
                "key", flat=True
            )
        )
        if taken and not replace:
            names = ", ".join(sorted(taken))
            self.message_user(
                request,
                f"A draft of {names} exists already; tick 'replace' to overwrite it.",
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)
        actor = request.user.get_username()
        saved = [drafts.save_as_draft(dict(spec.source), actor=actor) for spec in specs]
        self.message_user(
            request,
            f"Imported {', '.join(d.key for d in saved)} as a draft; validate it, then publish.",
            messages.SUCCESS,
        )
        target = saved[0] if len(saved) == 1 else None
        if target is None:
            return HttpResponseRedirect(reverse("admin:workflows_app_workflowdraft_changelist"))
        return HttpResponseRedirect(
            reverse("admin:workflows_app_workflowdraft_change", args=[target.pk])
        )

    def dry_run_view(self, request, object_id):
        draft = get_object_or_404(WorkflowDraft, pk=object_id)
        if not self.has_view_or_change_permission(request, draft):
            raise PermissionDenied
        spec, problems = drafts.check(drafts.draft_document(draft), source=f"draft {draft.key}")
        form = DryRunForm(request.POST or None)
        outcome = None
        if request.method == "POST" and form.is_valid() and spec is not None:
            data = form.cleaned_data
            outcome = dryrun.dry_run(spec, data["payload"], data["results"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": draft,
            "form": form,
            "problems": problems,
            "outcome": outcome,
            "title": f"Dry run of {draft.key}",
        }
        return TemplateResponse(request, "admin/workflows_app/workflowdraft/dry_run.html", context)

    def export_view(self, request, object_id, fmt):
        draft = get_object_or_404(WorkflowDraft, pk=object_id)
        if not self.has_view_or_change_permission(request, draft):
            raise PermissionDenied
        return export_response(drafts.draft_document(draft), f"{draft.key}-draft", fmt)


def export_response(document: dict, stem: str, fmt: str) -> HttpResponse:
    """A download of `document` as JSON or YAML."""
    if fmt not in ("json", "yaml"):
        return HttpResponse("Export as json or yaml.", status=404, content_type="text/plain")
    content_type = "application/json" if fmt == "json" else "application/yaml"
    response = HttpResponse(
        drafts.dump(document, fmt), content_type=f"{content_type}; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    return response
