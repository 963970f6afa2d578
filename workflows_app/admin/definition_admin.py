"""Published versions in the admin: read-only, with diagram, dry run, export, differences, edit
as draft."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from ..authoring import diagram, drafts, dryrun
from ..models import Service, WorkflowDefinition, WorkflowDraft
from ..queries import catalog
from .draft_admin import export_response
from .forms import DryRunForm
from .readonly import ReadOnlyAdminMixin


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Versions are immutable: everyone may only look; a change is made in a draft."""

    list_display = ("key", "version", "name", "public", "created_at")
    list_filter = ("key",)
    search_fields = ("key", "name")
    fields = ("key", "version", "name", "public", "case_prefix", "digest", "created_at")
    change_form_template = "admin/workflows_app/workflowdefinition/change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/export/<str:fmt>/",
                view(self.export_view),
                name="workflows_app_workflowdefinition_export",
            ),
            path(
                "<path:object_id>/diff/",
                view(self.diff_view),
                name="workflows_app_workflowdefinition_diff",
            ),
            path(
                "<path:object_id>/dry-run/",
                view(self.dry_run_view),
                name="workflows_app_workflowdefinition_dry_run",
            ),
            path(
                "<path:object_id>/edit/",
                view(require_POST(self.edit_view)),
                name="workflows_app_workflowdefinition_edit",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            kinds = dict(Service.objects.values_list("name", "kind"))
            context["diagram"] = mark_safe(
                diagram.render_svg(catalog.spec_of(obj), kinds=kinds)
            )  # escaped inside
            context["source_yaml"] = drafts.dump(obj.source, "yaml")
            context["versions"] = WorkflowDefinition.objects.filter(key=obj.key).exclude(pk=obj.pk)
            context["can_edit"] = request.user.has_perm("workflows_app.add_workflowdraft")
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _get(self, request, object_id) -> WorkflowDefinition:
        definition = get_object_or_404(WorkflowDefinition, pk=object_id)
        if not self.has_view_permission(request, definition):
            raise PermissionDenied
        return definition

    def export_view(self, request, object_id, fmt):
        definition = self._get(request, object_id)
        return export_response(definition.source, f"{definition.key}-v{definition.version}", fmt)

    def dry_run_view(self, request, object_id):
        """The dry run of a published version (drafts cannot hold branches or sub-workflows)."""
        definition = self._get(request, object_id)
        form = DryRunForm(request.POST or None)
        outcome = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            outcome = dryrun.dry_run(catalog.spec_of(definition), data["payload"], data["results"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": definition,
            "form": form,
            "outcome": outcome,
            "subject": definition,
            "title": f"Dry run of {definition}",
        }
        return TemplateResponse(request, "admin/workflows_app/workflowdraft/dry_run.html", context)

    def diff_view(self, request, object_id):
        """The changes from another version (?against=ID, default the one before) to this one."""
        new = self._get(request, object_id)
        versions = WorkflowDefinition.objects.filter(key=new.key).order_by("-version")
        against = request.GET.get("against", "")
        if against.isdigit():
            old = get_object_or_404(versions, pk=against)
        else:
            old = versions.filter(version__lt=new.version).first() or new
        if old.version > new.version:
            old, new = new, old
        lines = drafts.diff(old.source, new.source, old_label=str(old), new_label=str(new))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": new,
            "old": old,
            "new": new,
            "lines": lines,
            "versions": versions,
            "title": f"Changes from {old} to {new}",
        }
        return TemplateResponse(
            request, "admin/workflows_app/workflowdefinition/diff.html", context
        )

    def edit_view(self, request, object_id):
        """Start a draft from this version (or open the workflow's existing draft)."""
        definition = self._get(request, object_id)
        if not request.user.has_perm("workflows_app.add_workflowdraft"):
            raise PermissionDenied
        if why := drafts.why_not_editable(definition.source):
            self.message_user(request, why[:1].upper() + why[1:] + ".", messages.ERROR)
            url = reverse("admin:workflows_app_workflowdefinition_change", args=[definition.pk])
            return HttpResponseRedirect(url)
        draft = WorkflowDraft.objects.filter(key=definition.key).first()
        if draft is None:
            draft = drafts.save_as_draft(
                definition.source, actor=request.user.get_username(), based_on=definition
            )
            self.message_user(request, f"A new draft starts from {definition}.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"{definition.key} already has a draft; here it is. "
                f"Delete it first to start again from {definition}.",
                messages.WARNING,
            )
        return HttpResponseRedirect(
            reverse("admin:workflows_app_workflowdraft_change", args=[draft.pk])
        )
