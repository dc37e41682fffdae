from django.contrib import admin

from .models import Conversation, PublicLink


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Metadata only: operators can find, audit and delete conversations on request without
    reading what people wrote."""

    list_display = [
        "id",
        "title",
        "workspace",
        "user",
        "model",
        "shared_at",
        "pinned",
        "created_at",
        "updated_at",
    ]
    list_filter = ["pinned", ("shared_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "workspace__name", "user__email"]
    date_hierarchy = "created_at"
    fields = [
        "title",
        "workspace",
        "user",
        "model",
        "shared_at",
        "pinned",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PublicLink)
class PublicLinkAdmin(admin.ModelAdmin):
    list_display = ["conversation", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["conversation__title", "conversation__workspace__name"]
    readonly_fields = ["conversation", "token", "created_at"]

    def has_add_permission(self, request):
        return False
