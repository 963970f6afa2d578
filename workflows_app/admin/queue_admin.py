"""django-q2's failed tasks: a button that deletes old ones (its save_limit prunes successes only)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from django_q.admin import FailAdmin
from django_q.models import Failure

from ..runtime.schedules import KEEP_FAILURES_DAYS as KEEP_DAYS
from ..runtime.schedules import prune_failures


class PrunableFailAdmin(FailAdmin):
    change_list_template = "admin/django_q/failure/change_list.html"

    def get_urls(self):
        prune = self.admin_site.admin_view(require_POST(self.prune_view))
        return [path("prune/", prune, name="django_q_failure_prune"), *super().get_urls()]

    def prune_view(self, request):
        if not self.has_delete_permission(request):
            raise PermissionDenied
        count = prune_failures()
        self.message_user(
            request, f"Deleted {count} failed tasks older than {KEEP_DAYS} days.", messages.SUCCESS
        )
        return HttpResponseRedirect(reverse("admin:django_q_failure_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra = {
            "keep_days": KEEP_DAYS,
            "can_prune": self.has_delete_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)


if admin.site.is_registered(Failure):
    admin.site.unregister(Failure)
admin.site.register(Failure, PrunableFailAdmin)
