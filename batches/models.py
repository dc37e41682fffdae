"""Batch jobs: a file of chat completion requests (one JSON a line, as OpenAI's Batch API takes
them) run by the Celery workers through the one pipeline, with the results written to files.

A batch and its files belong to a workspace and to the user its API key acts as; every key
acting as that user in that workspace sees them (batches.selectors)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workspaces.models import Workspace


class BatchFile(models.Model):
    """A file of the /v1/files API: a batch's input uploaded by its user, or its results or
    errors written by the batch."""

    class Purpose(models.TextChoices):
        BATCH = "batch", _("Batch input")
        BATCH_OUTPUT = "batch_output", _("Batch output")

    public_id = models.CharField(max_length=40, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # In the database, not on a disk: every web process and worker of a deployment reads it.
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Gone from then on (the API and the pages no longer show it; the hourly task deletes it);
    # null: kept until deleted.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "user", "-id"], name="batches_file_list"),
            models.Index(fields=["expires_at"], name="batches_file_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.filename})"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class Batch(models.Model):
    class Status(models.TextChoices):
        VALIDATING = "validating", _("Validating")
        FAILED = "failed", _("Failed")
        IN_PROGRESS = "in_progress", _("In progress")
        FINALIZING = "finalizing", _("Finalizing")
        COMPLETED = "completed", _("Completed")
        EXPIRED = "expired", _("Expired")
        CANCELLING = "cancelling", _("Cancelling")
        CANCELLED = "cancelled", _("Cancelled")

    # A worker has work to do on a batch in these; the others are final.
    OPEN = (Status.VALIDATING, Status.IN_PROGRESS, Status.FINALIZING, Status.CANCELLING)

    public_id = models.CharField(max_length=40, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The key that created it: each request runs as that key (its model allow-list, its
    # budget), and stops running once the key is revoked.
    api_key_id = models.BigIntegerField(null=True, blank=True)
    endpoint = models.CharField(max_length=100)
    completion_window = models.CharField(max_length=10, default="24h")
    # The id stays when the file is deleted: the batch object still names its input.
    input_file_id = models.CharField(max_length=40)
    output_file = models.ForeignKey(
        BatchFile, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error_file = models.ForeignKey(
        BatchFile, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.VALIDATING)
    # Why validation failed: [{"code", "message", "param", "line"}].
    errors = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    # How long its output and error files are kept once written (`output_expires_after`).
    output_expires_seconds = models.PositiveIntegerField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    # Parts of the two totals: input read from the providers' prompt caches, output spent
    # reasoning. Defaulted in the database too, for a worker on the release before them.
    cached_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The worker running it and when it last said so: a batch whose worker has gone silent
    # (killed, its machine gone) is taken up again by another (batches.services.batches_resume).
    runner = models.CharField(max_length=40, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("batches")
        indexes = [
            models.Index(fields=["workspace", "user", "-id"], name="batches_batch_list"),
            models.Index(fields=["status", "heartbeat_at"], name="batches_batch_open"),
        ]

    def __str__(self) -> str:
        return self.public_id


class BatchRequest(models.Model):
    """One line of a batch's input, and once run, its result."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="requests")
    line = models.PositiveIntegerField()
    custom_id = models.CharField(max_length=512)
    body = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The completion, or the error body, exactly as /v1/chat/completions would answer.
    response = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=40, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "line"], name="batches_request_line")
        ]
        indexes = [models.Index(fields=["batch", "status"], name="batches_request_status")]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.custom_id}"
