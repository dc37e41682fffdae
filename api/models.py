import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workspaces.models import Workspace


def model_names_split(text: str) -> list[str]:
    """Model ids or aliases typed one per line or separated by commas; quotes and brackets
    around them (a JSON list typed out of habit) are dropped."""
    names = (name.strip().strip("\"'").strip() for name in re.split(r"[,\n]", text.strip("[] ")))
    return [name for name in names if name]


def model_names_validate(value) -> None:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError(_("A list of model ids or aliases."), code="invalid")


class ApiKey(models.Model):
    """A key for the /v1 API. Only a SHA-256 of the key is stored; the key is shown once.

    A personal key acts as its user inside one workspace; a workspace key is managed by the
    workspace's admins and acts as the admin who made it, in that workspace.
    """

    class Owner(models.TextChoices):
        PERSONAL = "personal", _("Personal")
        WORKSPACE = "workspace", _("Workspace")

    PREFIX = "ax-"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    owner = models.CharField(max_length=10, choices=Owner.choices, default=Owner.PERSONAL)
    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16, help_text=_("The first characters, to recognise the key.")
    )
    key_hash = models.CharField(max_length=64, unique=True)
    allowed_models = models.JSONField(
        _("allowed models"),
        default=list,
        blank=True,
        validators=[model_names_validate],
        help_text=_("Model ids or aliases; empty allows every model."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def allows_model(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


class StoredResponse(models.Model):
    """A /v1/responses answer kept for its user (`store`, on unless the request says false):
    read back by id, its input items listed, and followed by `previous_response_id`. Keys
    see what their user stored in their workspace, and nothing else (api.selectors).
    A background response is kept from the start, and answered by a worker (api.background)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        INCOMPLETE = "incomplete"
        FAILED = "failed"
        CANCELLED = "cancelled"

    RUNNING = (Status.QUEUED, Status.IN_PROGRESS)

    public_id = models.CharField(max_length=64, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, related_name="+")
    # The public ids of the responses it follows, oldest first (`previous_response_id`'s
    # chain): its context is read with one query, whatever the chain's length.
    ancestors = models.JSONField(default=list)
    # This request's input as OpenAI lists it (messages with ids); instructions are not part
    # of it and are not carried to the responses that follow.
    input_items = models.JSONField(default=list)
    # The response object as it was answered (a background one's: as it stands).
    body = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETED)
    # A background response's request body, until its worker has answered it.
    request = models.JSONField(null=True, blank=True)
    # Said every second by the worker answering a background response (api.background).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["status"],
                name="api_response_running",
                condition=models.Q(status__in=["queued", "in_progress"]),
            )
        ]

    def __str__(self) -> str:
        return self.public_id


class StoredResponseEvent(models.Model):
    """An event of a background response's stream, as /v1/responses streams it (`sequence`
    is its `sequence_number`): written by the worker answering it (api.background), replayed
    and followed by GET /v1/responses/{id}?stream=true. Its closing events are not written:
    they are said from the response's final body (api.handlers.closing_events)."""

    response = models.ForeignKey(StoredResponse, on_delete=models.CASCADE, related_name="events")
    sequence = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "sequence"], name="api_response_event")
        ]

    def __str__(self) -> str:
        return f"{self.response_id}#{self.sequence}"
