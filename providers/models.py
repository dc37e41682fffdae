from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .adapters import kind_choices
from .crypto import secret_decrypt


class Scope(models.TextChoices):
    GLOBAL = "global", _("Global")
    WORKSPACE = "workspace", _("Workspace")
    USER = "user", _("Personal")


class ProviderCredential(models.Model):
    """A way to reach one provider: kind, base URL and (encrypted) API key, owned globally,
    by a workspace or by one user. The key is write-only: after entry only `api_key_last4`
    is ever shown."""

    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.GLOBAL)
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="provider_credentials",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="provider_credentials",
    )
    kind = models.CharField(_("provider"), max_length=30, choices=kind_choices)
    name = models.CharField(_("name"), max_length=100)
    base_url = models.URLField(_("base URL"), max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    allow_private_network = models.BooleanField(
        _("allow private network"),
        default=False,
        help_text=_("Lets the base URL point at loopback or private addresses. Admins only."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    # Set for credentials created from environment variables (`providers sync-env`).
    env_source = models.CharField(max_length=40, blank=True, editable=False)
    last_status = models.CharField(max_length=40, blank=True, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    catalog_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "name", "id"]
        constraints = [
            models.CheckConstraint(
                name="credential_scope_owner",
                condition=(
                    Q(scope="global", workspace__isnull=True, user__isnull=True)
                    | Q(scope="workspace", workspace__isnull=False, user__isnull=True)
                    | Q(scope="user", workspace__isnull=True, user__isnull=False)
                ),
                violation_error_message=_(
                    "A global credential belongs to no workspace or user, a workspace one to "
                    "its workspace only, a personal one to its user only."
                ),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The owner the scope calls for, as field errors (the constraint says it in one)."""
        errors = {}
        if self.scope == Scope.WORKSPACE and self.workspace_id is None:
            errors["workspace"] = _("A workspace credential needs its workspace.")
        if self.scope != Scope.WORKSPACE and self.workspace_id is not None:
            errors["workspace"] = _("Only a workspace credential belongs to a workspace.")
        if self.scope == Scope.USER and self.user_id is None:
            errors["user"] = _("A personal credential needs the user it belongs to.")
        if self.scope != Scope.USER and self.user_id is not None:
            errors["user"] = _("Only a personal credential belongs to a user.")
        if errors:
            raise ValidationError(errors)

    @property
    def api_key(self) -> str:
        return secret_decrypt(self.api_key_encrypted)

    @property
    def api_key_masked(self) -> str:
        return f"…{self.api_key_last4}" if self.api_key_last4 else "—"

    @property
    def last_error_message(self) -> str:
        """What the last check of the key (a connection test, a model refresh) met, as the
        taxonomy says it; "" when it worked or was never checked."""
        from .types import error_message_for

        if self.last_checked_at is None or self.last_status in ("", "ok"):
            return ""
        return gettext(error_message_for(self.last_status))

    @property
    def effective_base_url(self) -> str:
        from .adapters import adapter_for

        return self.base_url or adapter_for(self.kind).default_base_url


class CatalogModel(models.Model):
    """A model a credential offers, listed from the provider and curated by admins."""

    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="catalog_models"
    )
    model_id = models.CharField(_("model id"), max_length=200)
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    context_window = models.PositiveIntegerField(_("context window"), null=True, blank=True)
    input_price_per_mtok = models.DecimalField(
        _("input price / M tokens (USD)"),
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    output_price_per_mtok = models.DecimalField(
        _("output price / M tokens (USD)"),
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    # False once a refresh no longer lists it; kept so aliases and history still resolve.
    listed = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["credential_id", "model_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "model_id"], name="one_catalog_row_per_model"
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.display_name or self.model_id


class ModelAlias(models.Model):
    """A name such as `fast` or `smart` standing for an ordered fallback list of targets;
    global, or for one workspace (which then overrides a global alias of the same name)."""

    name = models.SlugField(_("name"), max_length=60)
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="model_aliases",
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = _("model aliases")
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(workspace__isnull=True), name="unique_global_alias"
            ),
            models.UniqueConstraint(
                fields=["name", "workspace"],
                condition=Q(workspace__isnull=False),
                name="unique_workspace_alias",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AliasTarget(models.Model):
    alias = models.ForeignKey(ModelAlias, on_delete=models.CASCADE, related_name="targets")
    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="alias_targets"
    )
    model_id = models.CharField(_("model id"), max_length=200)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.alias} #{self.position}: {self.credential}:{self.model_id}"


class WorkspaceCredentialSetting(models.Model):
    """A workspace's choice about one global credential. No row means enabled."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="credential_settings"
    )
    credential = models.ForeignKey(
        ProviderCredential, on_delete=models.CASCADE, related_name="workspace_settings"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "credential"], name="one_setting_per_workspace_credential"
            )
        ]

    def __str__(self) -> str:
        return f"{self.credential} in {self.workspace}: {'on' if self.enabled else 'off'}"


class WorkspaceModelSetting(models.Model):
    """A workspace's choice about one model of a global credential. No row means enabled."""

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="model_settings"
    )
    catalog_model = models.ForeignKey(
        CatalogModel, on_delete=models.CASCADE, related_name="workspace_settings"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "catalog_model"], name="one_setting_per_workspace_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.catalog_model} in {self.workspace}: {'on' if self.enabled else 'off'}"
