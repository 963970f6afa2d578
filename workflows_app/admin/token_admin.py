"""API tokens in the admin: see, rename, narrow, bind to a person and revoke; never create or
reveal. A token bound to a person ("acting for") decides human tasks as that person.

A raw token is printed once by `manage.py create_api_token`; only its SHA-256 is stored, and the
admin shows no more than its first 8 characters, enough to tell two tokens apart.
"""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from ..models import ApiToken

HASH_SHOWN = 8
HOW_TO_CREATE = (
    "Tokens are created on the server with `python manage.py create_api_token NAME` "
    "(the token is printed once, never stored). Here you can narrow or revoke them."
)


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means every scope.",
    )
    workflows = forms.CharField(
        required=False,
        help_text="Workflow keys this token may use, separated by commas; empty means all.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", "scopes", "workflows", "acting_for")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["workflows"] = ", ".join(self.instance.workflows or [])

    def clean_workflows(self):
        keys = [key.strip() for key in self.cleaned_data["workflows"].split(",")]
        return sorted({key for key in keys if key})


@admin.register(ApiToken)
class ApiTokenAdmin(SimpleHistoryAdmin):
    form = ApiTokenForm
    list_display = (
        "name",
        "state",
        "scopes",
        "workflows",
        "acting_for",
        "created_at",
        "revoked_at",
        "key",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name",)
    readonly_fields = ("key", "created_at", "revoked_at")
    fields = ("name", "key", "scopes", "workflows", "acting_for", "created_at", "revoked_at")
    actions = ("revoke_tokens",)

    @admin.display(description="state")
    def state(self, obj):
        return "revoked" if obj.revoked_at else "live"

    @admin.display(description="hash begins")
    def key(self, obj):
        return f"{obj.key_hash[:HASH_SHOWN]}…"

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        live = list(queryset.filter(revoked_at=None))
        count = ApiToken.objects.filter(pk__in=[t.pk for t in live], revoked_at=None).update(
            revoked_at=timezone.now()
        )
        for token in live:
            self.log_change(request, token, "Revoked the token.")
        skipped = queryset.count() - count
        text = f"Revoked {count} token{'s' if count != 1 else ''}."
        if skipped:
            were = "tokens were" if skipped != 1 else "token was"
            text += f" {skipped} selected {were} revoked already."
        self.message_user(request, text, messages.SUCCESS if count else messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"subtitle": HOW_TO_CREATE, **(extra_context or {})}
        )

    def has_add_permission(self, request):
        return False  # an add form would have to show the raw token

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row keeps who called the API under which name

    def has_view_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def has_module_permission(self, request):
        return self.has_change_permission(request)
