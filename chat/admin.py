from django.contrib import admin
from django.template.defaultfilters import filesizeformat

from aurax.admin_base import ViewOnlyAdmin

from .models import Attachment, Conversation, PublicLink


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


@admin.register(Attachment)
class AttachmentAdmin(ViewOnlyAdmin):
    """Files attached to messages, as metadata (what takes room, whose, where): their content is
    not shown here. They go with their conversation; uploads never sent go after a day."""

    list_display = ["id", "name", "kind", "size_shown", "workspace", "uploaded_by", "sent"]
    list_filter = ["kind", ("conversation", admin.EmptyFieldListFilter)]
    search_fields = ["name", "workspace__name", "uploaded_by__email"]
    date_hierarchy = "created_at"
    fields = ["name", "kind", "media_type", "size", "workspace", "uploaded_by", "conversation"]
    readonly_fields = fields
    list_select_related = ["workspace", "uploaded_by"]

    @admin.display(description="size", ordering="size")
    def size_shown(self, obj: Attachment) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="sent", boolean=True)
    def sent(self, obj: Attachment) -> bool:
        return obj.conversation_id is not None

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data", "text")
