from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.errors import ApiError
from aurax.admin_base import ViewOnlyAdmin
from aurax.phrases import usd_text
from billing.selectors import usage_cost_of_reference

from .models import Batch, BatchFile
from .services import batch_cancel


@admin.register(Batch)
class BatchAdmin(ViewOnlyAdmin):
    """Batch jobs of the /v1 API: what each is doing, whose, how far along, what it used.
    Staff may cancel one that runs away (its requests in flight stop at once)."""

    list_display = [
        "public_id",
        "status",
        "workspace",
        "user",
        "total",
        "completed",
        "failed",
        "input_tokens",
        "output_tokens",
        "cost",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["public_id", "workspace__name", "user__email", "input_file_id"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "user"]
    fields = [
        "public_id",
        "status",
        "workspace",
        "user",
        "api_key_id",
        "endpoint",
        "input_file_id",
        "output_file",
        "error_file",
        "total",
        "completed",
        "failed",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "reasoning_tokens",
        "errors",
        "metadata",
        "created_at",
        "in_progress_at",
        "completed_at",
        "failed_at",
        "cancelled_at",
        "expired_at",
        "expires_at",
        "heartbeat_at",
    ]
    readonly_fields = fields
    actions = ["cancel"]

    def get_queryset(self, request):
        # What its requests cost so far, from the usage ledger, in the list's own query.
        return (
            super().get_queryset(request).annotate(cost_total=usage_cost_of_reference("public_id"))
        )

    @admin.display(description=_("cost"))
    def cost(self, obj: Batch) -> str:
        return "—" if obj.cost_total is None else usd_text(obj.cost_total)

    @admin.action(description=_("Cancel the selected batches"))
    def cancel(self, request, queryset):
        cancelled = 0
        for batch in queryset:
            try:
                batch_cancel(batch=batch)
            except ApiError:
                continue  # already finished
            cancelled += 1
        self.message_user(
            request,
            ngettext("%(n)d batch cancelled.", "%(n)d batches cancelled.", cancelled)
            % {"n": cancelled},
            messages.SUCCESS,
        )


@admin.register(BatchFile)
class BatchFileAdmin(ViewOnlyAdmin):
    """Batches' input and result files, as metadata: their content is not shown here."""

    list_display = [
        "public_id",
        "filename",
        "purpose",
        "size_shown",
        "workspace",
        "user",
        "expires_at",
    ]
    list_filter = ["purpose"]
    search_fields = ["public_id", "filename", "workspace__name", "user__email"]
    date_hierarchy = "created_at"
    fields = [
        "public_id",
        "filename",
        "purpose",
        "size",
        "workspace",
        "user",
        "created_at",
        "expires_at",
    ]
    readonly_fields = fields
    list_select_related = ["workspace", "user"]

    @admin.display(description=_("size"), ordering="size")
    def size_shown(self, obj: BatchFile) -> str:
        return filesizeformat(obj.size)

    def get_queryset(self, request):
        return super().get_queryset(request).defer("data")
