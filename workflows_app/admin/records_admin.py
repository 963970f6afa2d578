"""Records actions on instances (docs/records.md): legal hold on and off, the case export.

Mixed into the instance admin; each action needs its permission (the Supervisors group has
them) and calls the runtime.
"""

from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.http import HttpResponse

from ..runtime import export, retention

BOTH = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
MAX_HOLD = 500


class RecordsActionsMixin:
    """Legal hold and export actions for WorkflowInstanceAdmin."""

    records_actions = ("place_legal_hold", "lift_legal_hold", "export_record")

    def has_hold_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.hold_instance")

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("workflows_app.export_case")

    @admin.action(
        description="Place a legal hold (never purged)", permissions=["hold"], location=BOTH
    )
    def place_legal_hold(self, request, queryset):
        self._hold(request, queryset, held=True)

    @admin.action(description="Lift the legal hold", permissions=["hold"], location=BOTH)
    def lift_legal_hold(self, request, queryset):
        self._hold(request, queryset, held=False)

    def _hold(self, request, queryset, *, held: bool) -> None:
        ids = list(queryset.values_list("pk", flat=True)[:MAX_HOLD])
        changed = retention.set_legal_hold(instance_ids=ids, held=held)
        verb = "placed on legal hold" if held else "released from legal hold"
        for instance in queryset.filter(case_number__in=changed):
            self.log_change(request, instance, f"Legal hold {'placed' if held else 'lifted'}")
        if changed:
            self.message_user(
                request, f"{len(changed)} {verb}: {', '.join(changed)}", messages.SUCCESS
            )
        else:
            self.message_user(request, f"Nothing changed: already {verb}.", messages.INFO)

    @admin.action(description="Export the case record (zip)", permissions=["export"], location=BOTH)
    def export_record(self, request, queryset):
        instances = list(queryset[:2])
        if len(instances) != 1:
            self.message_user(request, "Export one case at a time.", messages.ERROR)
            return None
        instance = instances[0]
        response = HttpResponse(export.case_zip_bytes(instance), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{instance.case_number}.zip"'
        self.log_change(request, instance, "Case record exported")
        return response
