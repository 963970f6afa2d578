"""History of changes in the admin (docs/history.md): services, calendars and tokens show a
"History" button through SimpleHistoryAdmin in their own modules; staff groups get it here."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from simple_history.admin import SimpleHistoryAdmin

# Staff groups, with their history of changes (who renamed a group, changed its permissions).
admin.site.unregister(Group)


@admin.register(Group)
class GroupHistoryAdmin(SimpleHistoryAdmin, GroupAdmin):
    pass
