from django.contrib import admin

from aurax.admin_base import ViewOnlyAdmin

from .models import AuditEvent, Invitation, Membership, Workspace
from .services import workspace_response_cache_switched


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "is_personal",
        "member_count",
        "public_links_enabled",
        "created_at",
    ]
    list_filter = ["is_personal", "public_links_enabled", "response_cache_enabled"]
    search_fields = ["name", "slug", "memberships__user__email"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        if change and "response_cache_enabled" in form.changed_data:
            workspace_response_cache_switched(obj)
        super().save_model(request, obj, form, change)

    @admin.display(description="members")
    def member_count(self, obj):
        return obj.memberships.count()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "joined_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "workspace__name"]
    autocomplete_fields = ["user", "workspace"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "workspace",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role"]
    search_fields = ["email", "workspace__name"]
    readonly_fields = ["token"]


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdmin):
    """Read-only: the audit log is append-only, in the admin as everywhere else."""

    list_display = ["created_at", "workspace", "actor_email", "action", "target_repr", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_email", "action", "target_repr", "workspace__name"]
    date_hierarchy = "created_at"
