from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from aurax.admin_base import ViewOnlyAdmin

from .models import (
    PRICE_FIELDS,
    Budget,
    BudgetAlert,
    BudgetCounter,
    Invoice,
    InvoiceLine,
    ModelPriceOverride,
    Plan,
    RateLimit,
    RateLimitScope,
    Subscription,
    UsageEvent,
    UsageRollup,
)


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "workspace",
        "user",
        "provider_kind",
        "model",
        "input_tokens",
        "cache_read_tokens",
        "output_tokens",
        "cost",
        "estimated",
        "status",
        "source",
        "duration_ms",
    ]
    list_filter = ["status", "source", "estimated", "price_known", "provider_kind", "created_at"]
    search_fields = ["model", "workspace__name", "user__email", "request_id", "reference"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "user"]
    raw_id_fields = ["workspace", "user"]

    def has_change_permission(self, request, obj=None):
        return False  # the ledger is append-only

    def has_add_permission(self, request):
        return False


@admin.register(UsageRollup)
class UsageRollupAdmin(admin.ModelAdmin):
    list_display = [
        "bucket_start",
        "granularity",
        "workspace",
        "user",
        "provider_kind",
        "model",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost",
    ]
    list_filter = ["granularity", "provider_kind", "bucket_start"]
    search_fields = ["model", "workspace__name", "user__email"]
    list_select_related = ["workspace", "user"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "scope",
        "user",
        "api_key_id",
        "cost_limit",
        "token_limit",
        "soft_threshold_percent",
        "hard",
        "updated_at",
    ]
    list_filter = ["scope", "hard", "period"]
    search_fields = ["workspace__name", "workspace__slug", "user__email"]
    autocomplete_fields = ["workspace", "user"]


class RateLimitForm(forms.ModelForm):
    """A row without a target limits every user (workspace, key) that has no row of its own:
    staff say so explicitly, so a forgotten target does not throttle everyone."""

    default_for_all = forms.BooleanField(
        label=_("Default for all"),
        required=False,
        help_text=_(
            "Leave the target empty and tick this to limit every user, workspace or API key "
            "of the scope that has no limit of its own."
        ),
    )

    class Meta:
        model = RateLimit
        fields = ["scope", "workspace", "user", "api_key_id", "default_for_all", "rpm", "tpm"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["default_for_all"].initial = self.instance.target_id is None

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        if scope not in RateLimit.TARGETS:
            return data
        field = RateLimit.TARGETS[RateLimitScope(scope)][0]
        has_target = data.get(field) is not None
        if not has_target and not data.get("default_for_all"):
            self.add_error(
                field,
                _(
                    "Choose what this limit is for, or tick “Default for all” to make it the "
                    "default of the %(scope)s scope."
                )
                % {"scope": RateLimitScope(scope).label},
            )
        if has_target and data.get("default_for_all"):
            self.add_error(
                "default_for_all", _("A limit is either for one target or the default for all.")
            )
        return data


@admin.register(RateLimit)
class RateLimitAdmin(admin.ModelAdmin):
    form = RateLimitForm
    list_display = ["scope", "workspace", "user", "api_key_id", "rpm", "tpm", "updated_at"]
    list_filter = ["scope"]
    search_fields = ["workspace__name", "user__email"]
    autocomplete_fields = ["workspace", "user"]


@admin.register(ModelPriceOverride)
class ModelPriceOverrideAdmin(admin.ModelAdmin):
    list_display = ["provider_kind", "model", *PRICE_FIELDS, "updated_at"]
    list_filter = ["provider_kind"]
    search_fields = ["model"]


@admin.register(BudgetCounter)
class BudgetCounterAdmin(ViewOnlyAdmin):
    """Read-only: every usage event moves these counters, and the quota checks (and Redis's
    counters, seeded from them) trust them; a hand-edited amount would let a scope overspend
    or refuse it for spend it never made. Limits are changed on the budget itself."""

    list_display = ["scope_key", "period_start", "spent_cost", "spent_tokens"]
    list_filter = ["period_start"]
    search_fields = ["scope_key"]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    list_display = ["budget", "period_start", "kind", "created_at", "emailed_at"]
    list_filter = ["kind", "period_start"]
    search_fields = ["budget__workspace__name"]


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "monthly_price",
        "included_cost",
        "included_tokens",
        "max_budget_cost",
        "default_rpm",
        "default_tpm",
        "stripe_price_id",
        "active",
        "position",
    ]
    list_filter = ["active"]
    list_editable = ["active", "position"]
    search_fields = ["name", "slug", "stripe_price_id"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = [
        "workspace",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "stripe_customer_id",
        "stripe_subscription_id",
        "updated_at",
    ]
    list_filter = ["status", "plan"]
    search_fields = [
        "workspace__name",
        "workspace__slug",
        "stripe_customer_id",
        "stripe_subscription_id",
    ]
    list_select_related = ["workspace", "plan"]
    autocomplete_fields = ["workspace"]
    readonly_fields = [
        "stripe_last_event_id",
        "stripe_last_event_created",
        "created_at",
        "updated_at",
    ]

    def save_model(self, request, obj, form, change):
        # Through the service, so a plan change made by staff is audited like any other.
        from .plans import subscription_change

        subscription_change(
            workspace=obj.workspace,
            plan=obj.plan,
            status=obj.status,
            actor=request.user,
            source="admin",
            current_period_start=obj.current_period_start,
            current_period_end=obj.current_period_end,
            stripe_customer_id=obj.stripe_customer_id,
            stripe_subscription_id=obj.stripe_subscription_id,
        )
        obj.pk = Subscription.objects.get(workspace=obj.workspace).pk


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    fields = ["provider_kind", "model", "requests", "input_tokens", "output_tokens", "cost"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "workspace_name",
        "period_start",
        "plan_name",
        "status",
        "usage_cost",
        "overage",
        "total",
        "issued_at",
        "paid_at",
    ]
    list_filter = ["status", "plan", "period_start"]
    search_fields = ["number", "workspace_name", "workspace__slug"]
    date_hierarchy = "period_start"
    list_select_related = ["workspace"]
    inlines = [InvoiceLineInline]
    actions = ["issue", "mark_paid"]
    readonly_fields = [
        "workspace",
        "workspace_name",
        "number",
        "period_start",
        "period_end",
        "status",
        "plan",
        "plan_name",
        "plan_price",
        "included_cost",
        "included_tokens",
        "usage_cost",
        "usage_tokens",
        "allowance_applied",
        "overage",
        "total",
        "currency",
        "created_at",
        "updated_at",
        "issued_at",
        "paid_at",
    ]

    def has_add_permission(self, request):
        return False  # invoices come from the monthly job (billing.invoices_generate)

    def has_delete_permission(self, request, obj=None):
        # Issued and paid invoices are accounting records; only a draft may be deleted
        # (generating its month again recreates it).
        from .models import InvoiceStatus

        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # No bulk delete: it would take issued and paid invoices along with the drafts.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Issue the selected draft invoices"))
    def issue(self, request, queryset):
        from .invoices import InvoicePeriodOpen, invoice_issue
        from .models import InvoiceStatus

        issued, still_open, not_drafts = [], [], []
        for invoice in queryset:
            if invoice.status != InvoiceStatus.DRAFT:
                not_drafts.append(invoice.number)
                continue
            try:
                issued.append(invoice_issue(invoice=invoice).number)
            except InvoicePeriodOpen:
                still_open.append(invoice.number)
        if issued:
            self._tell(request, _("Invoices issued: %(numbers)s."), issued, messages.SUCCESS)
        if not_drafts:
            self._tell(
                request,
                _("Not drafts, left as they were: %(numbers)s."),
                not_drafts,
                messages.WARNING,
            )
        self._tell_still_open(request, still_open)

    @admin.action(description=_("Mark the selected invoices paid"))
    def mark_paid(self, request, queryset):
        from .invoices import InvoicePeriodOpen, invoice_mark_paid

        paid, still_open = [], []
        for invoice in queryset:
            try:
                paid.append(invoice_mark_paid(invoice=invoice).number)
            except InvoicePeriodOpen:
                still_open.append(invoice.number)
        if paid:
            self._tell(request, _("Invoices marked paid: %(numbers)s."), paid, messages.SUCCESS)
        self._tell_still_open(request, still_open)

    def _tell_still_open(self, request, numbers):
        if numbers:
            self._tell(
                request,
                _(
                    "Skipped, their month has not ended yet and its usage is still coming in: "
                    "%(numbers)s."
                ),
                numbers,
                messages.ERROR,
            )

    def _tell(self, request, message, numbers, level):
        self.message_user(request, message % {"numbers": ", ".join(numbers)}, level)
