"""Status webhooks in the admin (docs/webhooks.md): subscriptions, and every message sent or
waiting with its attempts and last error; "send again" resumes failed ones (in order).

Staff see and act only as their Django permissions allow: viewing needs the view permission,
"send again" the change permission on deliveries. Messages themselves are never edited.
"""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from ..models import Subscription, WebhookDelivery
from ..runtime import webhooks


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    list_display = ("name", "url", "active", "events", "workflows", "failed", "pending")
    list_filter = ("active",)
    search_fields = ("name", "url")
    fields = ("name", "url", "secret", "events", "workflows", "active")

    def get_queryset(self, request):
        failed = Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.FAILED))
        pending = Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.State.PENDING))
        return super().get_queryset(request).annotate(n_failed=failed, n_pending=pending)

    @admin.display(description=_("failed"), ordering="n_failed")
    def failed(self, obj: Subscription) -> int:
        return obj.n_failed

    @admin.display(description=_("pending"), ordering="n_pending")
    def pending(self, obj: Subscription) -> int:
        return obj.n_pending


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "instance",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "delivered_at",
    )
    list_filter = ("state", "subscription")
    search_fields = ("instance__case_number", "message_id")
    list_select_related = ("subscription", "instance")
    actions = ["send_again"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # The change page stays read-only (every field is); the permission gates the action.
        return super().has_change_permission(request, obj)

    @admin.action(
        description=_("Send again (failed or waiting messages, in order)"), permissions=["change"]
    )
    def send_again(self, request, queryset):
        count = webhooks.send_again(delivery_ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, _("%(n)d message(s) will be sent again.") % {"n": count})
