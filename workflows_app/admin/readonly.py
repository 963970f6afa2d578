"""A mixin for admin pages of rows nobody edits in the admin (published versions, instances)."""


class ReadOnlyAdminMixin:
    """View only: versions are immutable and instances change only through the services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
