from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from workspaces.models import Workspace


class Conversation(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True, default="")
    # False until a title was generated (or typed); the first exchange then names it.
    title_final = models.BooleanField(default=False)
    model = models.CharField(max_length=200, blank=True, default="")
    system_prompt = models.TextField(blank=True, default="")
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    pinned = models.BooleanField(default=False)
    # Set while the author shares the conversation with its workspace: every member may read it.
    shared_at = models.DateTimeField(null=True, blank=True)
    # The last message of the branch on screen; the active path runs from it up to the root.
    current_leaf = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["user", "workspace", "-pinned", "-updated_at"], name="chat_conv_sidebar"
            ),
            models.Index(fields=["workspace", "-shared_at"], name="chat_conv_shared"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Status(models.TextChoices):
        COMPLETE = "complete", _("Complete")
        STREAMING = "streaming", _("Streaming")
        STOPPED = "stopped", _("Stopped")
        ERROR = "error", _("Error")
        INTERRUPTED = "interrupted", _("Interrupted")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.COMPLETE)
    # What was asked for (an alias or model id) and what actually answered.
    model = models.CharField(max_length=200, blank=True, default="")
    served_model = models.CharField(max_length=200, blank=True, default="")
    provider_kind = models.CharField(max_length=40, blank=True, default="")
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    # The error message kept untranslated with its values (aurax.phrases), said in the
    # reader's language when shown; null for messages without values and for older answers.
    error_phrase = models.JSONField(null=True, blank=True)
    retry_after = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Parts of the two counts: input read from the provider's prompt cache, output spent
    # reasoning (billing.models.UsageEvent). Defaulted in the database too, for a process on
    # the release before them.
    cache_read_tokens = models.PositiveIntegerField(default=0, db_default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0, db_default=0)
    tokens_estimated = models.BooleanField(default=False)
    cost = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Refreshed whenever a streaming answer's text is saved: a streaming row whose heartbeat is
    # old belongs to a process that died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The files sent with a user message, as {"id", "name", "kind", "media_type", "size"} of
    # its Attachment rows: kept on the row so that drawing a thread, and building the prompt of
    # a conversation without files, read nothing more. An edited copy lists the same files.
    attachments = models.JSONField(default=list, blank=True, db_default=[])

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="chat_msg_conv_created"),
            models.Index(fields=["status"], name="chat_msg_status"),
        ]
        constraints = [
            # At most one answer of a conversation streams: a send relies on the database to
            # refuse a second (chat.services.message_send).
            models.UniqueConstraint(
                fields=["conversation"],
                condition=models.Q(status="streaming"),
                name="chat_msg_one_streaming",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"


class PublicLink(models.Model):
    """A read-only link to a conversation for people without an account. It works only while
    the workspace allows public links and until it is revoked; a revoked link stays as a record
    and a new one gets a new token."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="public_links"
    )
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Public link to {self.conversation}"


class Attachment(models.Model):
    """A file attached to a chat message: an image the model looks at, or a document whose text
    it reads (chat.attachments). Uploaded before its message is sent, with no conversation
    until then: a first message creates its conversation as it is sent. Read through the
    conversation's access once sent, by its uploader alone before."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        DOCUMENT = "document", _("Document")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # Null once the account is deleted: a file sent stays with its conversation, which may have
    # passed to the workspace's owner (chat.services.conversations_member_removed).
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="attachments",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=255)
    # Read from the file itself, never taken from the browser.
    media_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    # In the database, not on a disk: every web process of a deployment reads it.
    data = models.BinaryField()
    # A document's text, read once at upload: what the model is given.
    text = models.TextField(blank=True, default="")
    # An image's copy for the model, when the file itself cannot go as it is (turned by its
    # EXIF orientation, too large: chat.attachments); null: the file goes.
    model_data = models.BinaryField(null=True, blank=True)
    model_media_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(conversation__isnull=True),
                name="chat_attachment_unsent",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def described(self) -> dict:
        """As its message lists it (Message.attachments)."""
        return {
            "id": self.pk,
            "name": self.name,
            "kind": self.kind,
            "media_type": self.media_type,
            "size": self.size,
        }
