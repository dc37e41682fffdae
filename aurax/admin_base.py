"""What several apps' admin classes share."""

from django.contrib import admin


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows staff may look at and never add, change or delete in the admin: records the
    product itself keeps (the audit log, budget counters)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
