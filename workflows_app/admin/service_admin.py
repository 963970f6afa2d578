"""Services, business calendars and delegations in the admin.

A service is checked with the loader's own rules (definitions.parse_services on a one-service
document). Its secret is write-only: never rendered back, and a blank input keeps it.
"""

import json
import re
import time
import uuid
from zoneinfo import ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin

from .. import definitions
from ..models import BusinessCalendar, Delegation, Service, ServiceKind
from ..queries import addresses, catalog
from ..runtime import outbound

PING_TIMEOUT = (3.05, 5.0)  # connect, read: a person is waiting for the page
_FORM_FIELD = {
    "kind": "kind",
    "url": "url",
    "timeout": "timeout_seconds",
    "secret": "secret",
    "secretEnv": "secret_env",
    "concurrency": "concurrency",
    "group": "group",
    "backupGroup": "backup_group",
    "callable": "callable",
    "form": "form",
}


def service_problems(data: dict) -> list[tuple[str | None, str]]:
    """(form field, message) for each rule a service breaks: the loader's rules, then import."""
    timeout = data.get("timeout_seconds")
    entry = {
        "kind": data.get("kind"),
        "url": data.get("url"),
        "secret": data.get("secret"),
        "timeout": f"{timeout}s" if timeout else None,
        "secretEnv": data.get("secret_env"),
        "concurrency": data.get("concurrency"),
        "group": data.get("group"),
        "backupGroup": data.get("backup_group"),
        "callable": data.get("callable"),
        "form": data.get("form"),
    }
    entry = {key: value for key, value in entry.items() if value not in (None, "", [])}
    document = {"services": {data.get("name") or "": entry}}
    prefixes = tuple(settings.HMS_PYTHON_SERVICES)
    try:
        definitions.parse_services(document, source="<admin>", python_prefixes=prefixes)
    except definitions.InvalidDefinition as refused:
        return [(_form_field(p.field), p.message) for p in refused.problems]
    if entry["kind"] == ServiceKind.PYTHON:
        try:
            catalog.load_callable(entry["callable"])
        except Exception as exc:  # noqa: BLE001 - any import failure is shown to the author
            return [("callable", f"callable '{entry['callable']}' cannot be loaded: {exc}")]
    if entry["kind"] == ServiceKind.HTTP and (why := addresses.url_refusal(entry["url"])):
        return [("url", f"url '{entry['url']}': {why}")]
    return []


def _form_field(field: str | None) -> str | None:
    """The admin form's field for a problem's field ("form[0].type" is the form field)."""
    if not field:
        return "name"
    return _FORM_FIELD.get(re.split(r"[.\[]", field)[0])


class ServiceForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="http: signing secret (Standard Webhooks). Never shown; leave blank to keep it.",
    )
    remove_secret = forms.BooleanField(required=False, help_text="Delete the stored secret.")

    class Meta:
        model = Service
        fields = (
            "name",
            "kind",
            "url",
            "timeout_seconds",
            "secret",
            "remove_secret",
            "secret_env",
            "concurrency",
            "group",
            "backup_group",
            "callable",
            "form",
        )

    def clean(self):
        data = super().clean()
        keep = "" if data.get("remove_secret") else self.instance.secret
        data["secret"] = data.get("secret") or keep
        if not self.errors:
            for field, message in service_problems(data):
                self.add_error(field if field in self.fields else None, message)
        return data


def ping(service: Service) -> tuple[bool, str]:
    """POST a signed ping to an HTTP service; (answered, what happened) in one line: the
    status and the time, never the reply's body; redirects are not followed."""
    if service.kind != ServiceKind.HTTP:
        return (
            False,
            f"{service.name} is a {service.kind} service; only HTTP services answer a ping",
        )
    body = json.dumps({"ping": True, "service": service.name}, separators=(",", ":"))
    started = time.monotonic()
    try:
        reply = outbound.post(
            service,
            body,
            msg_id=f"ping-{uuid.uuid4()}",
            headers={"User-Agent": "hms-admin-ping"},
            timeout=PING_TIMEOUT,
        )
    except outbound.UnusableSecret as exc:
        return False, f"{service.name}: cannot sign the ping ({exc})"
    except outbound.AddressRefused as exc:
        return False, f"{service.name}: not sent, {exc}"
    except outbound.TIMEOUTS:
        return False, f"{service.name}: no answer from {service.url} within {PING_TIMEOUT[1]:g}s"
    except outbound.UNREACHABLE as exc:
        return False, f"{service.name}: cannot reach {service.url} ({type(exc).__name__})"
    took = round((time.monotonic() - started) * 1000)
    # Only the status: the reply's body (or a redirect's target) could be any internal page.
    return True, f"{service.name} answered {reply.status} in {took} ms"


@admin.register(Service)
class ServiceAdmin(SimpleHistoryAdmin):
    form = ServiceForm
    list_display = ("name", "kind", "url", "group", "callable", "has_secret", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "url", "group", "callable")
    actions = ("test_service",)

    @admin.display(boolean=True, description="secret stored")
    def has_secret(self, obj):
        return bool(obj.secret or obj.secret_env)

    @admin.action(
        description="Test: send a signed ping",
        permissions=["view"],
        location=[ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM],
    )
    def test_service(self, request, queryset):
        for service in queryset[:20]:
            answered, text = ping(service)
            self.message_user(request, text, messages.SUCCESS if answered else messages.ERROR)


class CalendarForm(forms.ModelForm):
    class Meta:
        model = BusinessCalendar
        fields = ("name", "time_zone", "work_start", "work_end", "weekdays", "holidays")

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                self.instance.to_calendar()
            except (ValueError, ZoneInfoNotFoundError) as exc:
                raise ValidationError(f"The calendar cannot be used: {exc}") from None
        return data


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(SimpleHistoryAdmin):
    form = CalendarForm
    list_display = ("name", "time_zone", "work_start", "work_end", "weekdays")


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    list_display = ("user", "deputy", "starts_on", "ends_on", "reason")
    list_filter = ("starts_on",)
    search_fields = ("user__username", "deputy__username", "reason")
