from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .forms import ModelNamesField
from .models import ApiKey, StoredResponse
from .services import api_keys_changed


class ApiKeyAdminForm(forms.ModelForm):
    allowed_models = ModelNamesField(
        label=_("Allowed models"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Model ids or aliases, separated by commas or one per line; empty allows every model."
        ),
    )

    class Meta:
        model = ApiKey
        fields = [
            "workspace",
            "user",
            "owner",
            "name",
            "allowed_models",
            "expires_at",
            "revoked_at",
        ]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyAdminForm
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


@admin.register(StoredResponse)
class StoredResponseAdmin(admin.ModelAdmin):
    """/v1/responses answers kept for their users: looked up, and deleted, not edited."""

    list_display = ["public_id", "workspace", "user", "api_key", "status", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["public_id", "user__email", "workspace__name"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "user", "api_key"]
    raw_id_fields = ["workspace", "user", "api_key"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
