from django.contrib import admin

from .models import ApiKey
from .services import api_keys_changed


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "workspace",
        "user",
        "owner",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["owner"]
    search_fields = ["name", "prefix", "user__email", "workspace__name"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
    autocomplete_fields = ["user", "workspace"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        api_keys_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        api_keys_changed()

    def has_add_permission(self, request):
        # Keys are made where they can be shown once: the settings page or create_api_key.
        return False
