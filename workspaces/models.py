from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")
    VIEWER = "viewer", _("Viewer")


# Higher rank may do everything a lower rank may.
ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Workspace(models.Model):
    name = models.CharField(_("Name"), max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    color = models.CharField(_("Colour"), max_length=7, default="#6366f1")
    is_personal = models.BooleanField(default=False)
    # Read-only public links to conversations are off unless an admin turns them on.
    public_links_enabled = models.BooleanField(
        _("Allow public links"),
        default=False,
        help_text=_("Members may make read-only links to their conversations, for anyone."),
    )
    default_model = models.CharField(
        _("Default model"),
        max_length=200,
        blank=True,
        default="",
        help_text=_("Preselected in new chats of members who have not chosen their own."),
    )
    # A default in the database too: processes still on the release before it insert rows
    # without the column while an upgrade rolls out.
    response_cache_enabled = models.BooleanField(
        _("Allow the response cache"),
        default=True,
        db_default=True,
        help_text=_(
            "API requests that ask for it may be answered with the answer to an identical "
            "earlier request of this workspace, without a new call or charge. Turning this off, "
            "or on again, drops every answer kept before."
        ),
    )
    # When the response cache was last turned off or on: no answer kept before is served.
    response_cache_reset_at = models.DateTimeField(null=True, blank=True, editable=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="workspaces"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]


class Invitation(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "accepted_at", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.workspace} ({self.role})"


# What the audit log page calls each action. Apps below workspaces record their own actions;
# their names are listed here so the page reads the same for all of them. An action missing
# here is shown by its code.
AUDIT_ACTION_LABELS = {
    "workspace.create": _("Workspace created"),
    "workspace.update": _("Workspace settings changed"),
    "workspace.delete": _("Workspace deleted"),
    "workspace.transfer": _("Ownership transferred"),
    "member.role_change": _("Role changed"),
    "member.remove": _("Member removed"),
    "member.leave": _("Member left"),
    "member.account_delete": _("Member's account deleted"),
    "invitation.create": _("Invitation sent"),
    "invitation.revoke": _("Invitation revoked"),
    "invitation.accept": _("Invitation accepted"),
    "conversation.share": _("Conversation shared"),
    "conversation.unshare": _("Conversation unshared"),
    "conversation.public_link_create": _("Public link created"),
    "conversation.public_link_revoke": _("Public link revoked"),
    "api_key.create": _("API key created"),
    "api_key.revoke": _("API key revoked"),
    "credential.create": _("Provider key added"),
    "credential.delete": _("Provider key deleted"),
    "credential.enable": _("Provider key allowed"),
    "credential.disable": _("Provider key switched off"),
    "model.enable": _("Model allowed"),
    "model.disable": _("Model switched off"),
    "prompt_template.create": _("Prompt template created"),
    "prompt_template.update": _("Prompt template edited"),
    "prompt_template.delete": _("Prompt template deleted"),
    "billing.plan_change": _("Plan changed"),
}

# Workspace fields as `workspace.update` names them in its data.
_WORKSPACE_FIELD_LABELS = {
    "name": _("Name"),
    "color": _("Colour"),
    "default_model": _("Default model"),
    "public_links_enabled": _("Allow public links"),
    "response_cache_enabled": _("Allow the response cache"),
}


def _role_label(value) -> str:
    try:
        return str(Role(value).label)
    except ValueError:
        return str(value)


class AuditEvent(models.Model):
    """Append-only: written by `audit_record`, never edited or deleted through the product."""

    # Kept when the workspace is deleted: the record of who deleted it must outlive it.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, default="")
    target_id = models.CharField(max_length=64, blank=True, default="")
    target_repr = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email} {self.action} {self.target_repr}"
        )

    @property
    def action_label(self) -> str:
        return str(AUDIT_ACTION_LABELS.get(self.action, self.action))

    @property
    def details(self) -> str:
        """What changed, in words, where the event's data says it."""
        data = self.data if isinstance(self.data, dict) else {}
        if self.action == "member.role_change" and "from" in data and "to" in data:
            return f"{_role_label(data['from'])} → {_role_label(data['to'])}"
        if self.action in ("invitation.create", "invitation.accept") and data.get("role"):
            return _role_label(data["role"])
        if self.action == "workspace.update":
            return ", ".join(
                str(_WORKSPACE_FIELD_LABELS.get(field, field))
                for field in data
                if field in _WORKSPACE_FIELD_LABELS
            )
        if self.action == "billing.plan_change" and data.get("to_plan"):
            return f"{data.get('from_plan') or '—'} → {data['to_plan']}"
        return ""
