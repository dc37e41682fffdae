"""The usage ledger, prices, budgets, rate limits and rollups.

Billing sits below providers/gateway/chat in the layering, so rows refer to credentials,
API keys and provider models by plain ids and strings: a ledger row must outlive the
credential or key that produced it.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from providers.adapters import kind_choices
from workspaces.models import Workspace


class AmountField(models.DecimalField):
    """A USD amount someone types in (a price, a limit, an allowance): never negative, so
    a typo cannot turn spending into credit. Forms get `min=0` and the same check."""

    default_validators = [MinValueValidator(Decimal(0))]

    def formfield(self, **kwargs):
        return super().formfield(**{"min_value": Decimal(0), **kwargs})


def _not_negative(*fields: str) -> models.Q:
    condition = models.Q()
    for field in fields:
        condition &= models.Q(**{f"{field}__isnull": True}) | models.Q(**{f"{field}__gte": 0})
    return condition


class UsageStatus(models.TextChoices):
    OK = "ok", _("Completed")
    STOPPED = "stopped", _("Stopped by the user")
    ERROR = "error", _("Failed")
    CLIENT_GONE = "client_gone", _("Client disconnected")
    CACHED = "cached", _("Served from the response cache")


class UsageSource(models.TextChoices):
    CHAT = "chat", _("Chat")
    API = "api", _("API")
    BATCH = "batch", _("Batch")
    COMPARE = "compare", _("Comparison")


# The parts of a call's token totals kept apart (providers.types.Usage), in the ledger, its
# rollups and the usage summaries, each under this name (cache_write_1h_tokens: the part of the
# cache writes kept an hour).
TOKEN_PARTS = (
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)


class UsageEvent(models.Model):
    """Exactly one row per completion call, whatever way it ended."""

    # Kept when the workspace is deleted (with its owner's account, or by its owner): the calls
    # were made and paid for, and the operator's cost totals must not shrink after the fact.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_events"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_events",
    )
    api_key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    credential_id = models.BigIntegerField(null=True, blank=True)
    provider_kind = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    # Parts of the two totals. A default in the database too: a process still on the release
    # before them writes rows without these columns while an upgrade rolls out.
    cache_read_tokens = models.PositiveIntegerField(
        default=0, db_default=0, help_text=_("Input tokens read from the provider's prompt cache.")
    )
    cache_write_tokens = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text=_("Input tokens written to the provider's prompt cache."),
    )
    cache_write_1h_tokens = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text=_("Of the tokens written to the prompt cache, those kept an hour."),
    )
    reasoning_tokens = models.PositiveIntegerField(
        default=0, db_default=0, help_text=_("Output tokens the model spent reasoning.")
    )
    estimated = models.BooleanField(
        default=False, help_text=_("Token counts were estimated locally, not reported upstream.")
    )
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_known = models.BooleanField(
        default=True, help_text=_("False when no price was found, so the cost is recorded as 0.")
    )
    status = models.CharField(max_length=12, choices=UsageStatus.choices, default=UsageStatus.OK)
    error_code = models.CharField(max_length=60, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=10, choices=UsageSource.choices, default=UsageSource.CHAT)
    request_id = models.CharField(max_length=64, blank=True)
    # Nullable on purpose: "no reference" must not collide with "" in lookups by chat.
    reference = models.CharField(max_length=100, null=True, blank=True, db_index=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set by the ledger writer: replaying a crashed process's journal skips rows already here.
    uid = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"], name="usage_ws_created")]

    def __str__(self) -> str:
        tokens = f"{self.input_tokens}+{self.output_tokens}"
        return f"{self.provider_kind}/{self.model} {tokens} ${self.cost}"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


PRICE_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
)


class ModelPriceOverride(models.Model):
    """A price set by an operator; beats the genai-prices tables."""

    provider_kind = models.CharField(_("provider"), max_length=40, choices=kind_choices)
    model = models.CharField(max_length=200)
    input_per_mtok = AmountField(
        max_digits=12, decimal_places=6, help_text=_("USD per million input tokens")
    )
    output_per_mtok = AmountField(
        max_digits=12, decimal_places=6, help_text=_("USD per million output tokens")
    )
    cache_read_per_mtok = AmountField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_(
            "USD per million input tokens read from the provider's prompt cache; "
            "empty: the input price"
        ),
    )
    cache_write_per_mtok = AmountField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_(
            "USD per million input tokens written to the provider's prompt cache; "
            "empty: the input price"
        ),
    )
    cache_write_1h_per_mtok = AmountField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text=_(
            "USD per million input tokens written to the prompt cache to be kept an hour "
            "(Anthropic's 1-hour cache); empty: the cache-write price"
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider_kind", "model"],
                name="one_price_per_model",
                violation_error_message=_("This model of this provider already has a price."),
            ),
            models.CheckConstraint(
                condition=_not_negative(*PRICE_FIELDS),
                name="price_override_not_negative",
                violation_error_message=_("Prices cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_kind}/{self.model}"


class BudgetScope(models.TextChoices):
    WORKSPACE = "workspace", _("Workspace")
    MEMBER = "member", _("Member of a workspace")
    API_KEY = "api_key", _("API key")


class BudgetPeriod(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")


class Budget(models.Model):
    scope = models.CharField(max_length=10, choices=BudgetScope.choices)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="budgets")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="budgets",
        help_text=_("For member budgets."),
    )
    api_key_id = models.BigIntegerField(null=True, blank=True, help_text=_("For API key budgets."))
    period = models.CharField(max_length=10, choices=BudgetPeriod.choices, default="monthly")
    cost_limit = AmountField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text=_("USD per period")
    )
    token_limit = models.PositiveBigIntegerField(
        null=True, blank=True, help_text=_("Tokens per period")
    )
    soft_threshold_percent = models.PositiveSmallIntegerField(
        default=80,
        validators=[
            MinValueValidator(1, message=_("Between 1 and 100.")),
            MaxValueValidator(100, message=_("Between 1 and 100.")),
        ],
        help_text=_("Warn workspace admins once per period past this share."),
    )
    hard = models.BooleanField(default=True, help_text=_("Refuse requests past the limit."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(scope="workspace"),
                name="one_workspace_budget",
                violation_error_message=_("This workspace already has a workspace budget."),
            ),
            models.UniqueConstraint(
                fields=["workspace", "user"],
                condition=models.Q(scope="member"),
                name="one_member_budget",
                violation_error_message=_("This member already has a budget in this workspace."),
            ),
            models.UniqueConstraint(
                fields=["api_key_id"],
                condition=models.Q(scope="api_key"),
                name="one_api_key_budget",
                violation_error_message=_("This API key already has a budget."),
            ),
            models.CheckConstraint(
                condition=_not_negative("cost_limit"),
                name="budget_not_negative",
                violation_error_message=_("Budget limits cannot be negative."),
            ),
            models.CheckConstraint(
                condition=models.Q(soft_threshold_percent__gte=1, soft_threshold_percent__lte=100),
                name="budget_soft_threshold_percent",
                violation_error_message=_("The soft threshold is between 1 and 100 percent."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} budget of {self.workspace}"

    def clean(self) -> None:
        """What every budget must be, whoever sets it (the /usage/ form, the admin)."""
        errors = {}
        if self.scope == BudgetScope.MEMBER and self.user_id is None:
            errors["user"] = _("A member budget needs the member it limits.")
        if self.scope != BudgetScope.MEMBER and self.user_id is not None:
            errors["user"] = _("Only a member budget names a user.")
        if self.scope == BudgetScope.API_KEY and self.api_key_id is None:
            errors["api_key_id"] = _("An API key budget needs the id of the key it limits.")
        if self.scope != BudgetScope.API_KEY and self.api_key_id is not None:
            errors["api_key_id"] = _("Only an API key budget names an API key.")
        if self.cost_limit is None and self.token_limit is None:
            errors[NON_FIELD_ERRORS] = _("Set a cost limit, a token limit or both.")
        if errors:
            raise ValidationError(errors)

    @property
    def scope_key(self) -> str:
        from .quotas import scope_key

        return scope_key(
            scope=self.scope,
            workspace_id=self.workspace_id,
            user_id=self.user_id,
            api_key_id=self.api_key_id,
        )


class BudgetCounter(models.Model):
    """Spend of one scope in one period, kept up to date by every usage event.

    The database quota backend locks these rows; in Redis mode they seed Redis's counters.
    """

    scope_key = models.CharField(max_length=80)
    period_start = models.DateField()
    spent_cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    spent_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope_key", "period_start"], name="one_counter")
        ]

    def __str__(self) -> str:
        return f"{self.scope_key} {self.period_start:%Y-%m}"


class BudgetReservation(models.Model):
    """An in-flight worst-case reservation (database quota backend only)."""

    reservation_id = models.CharField(max_length=40, db_index=True)
    scope_key = models.CharField(max_length=80)
    period_start = models.DateField()
    cost = models.DecimalField(max_digits=14, decimal_places=6)
    tokens = models.BigIntegerField()
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["scope_key", "period_start"], name="resv_scope_period")]

    def __str__(self) -> str:
        return f"{self.reservation_id} {self.scope_key}"


class BudgetAlert(models.Model):
    """One row per scope, period and kind: the unique constraint makes the email go once."""

    class Kind(models.TextChoices):
        SOFT = "soft", _("Soft threshold crossed")
        HARD = "hard", _("Limit reached")

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateField()
    kind = models.CharField(max_length=4, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "kind"], name="one_alert_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.period_start:%Y-%m} {self.kind}"


class RateLimitScope(models.TextChoices):
    USER = "user", _("User")
    WORKSPACE = "workspace", _("Workspace")
    API_KEY = "api_key", _("API key")


class RateLimit(models.Model):
    """Requests and tokens per minute for one target of a scope (a user, a workspace, an API
    key), or, with no target, the default for every target of the scope. One row per target
    and one default per scope; a row for the target beats the default."""

    # Per scope: the field naming its target, and that field's attribute.
    TARGETS = {
        RateLimitScope.USER: ("user", "user_id"),
        RateLimitScope.WORKSPACE: ("workspace", "workspace_id"),
        RateLimitScope.API_KEY: ("api_key_id", "api_key_id"),
    }

    scope = models.CharField(max_length=10, choices=RateLimitScope.choices)
    workspace = models.ForeignKey(
        Workspace,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rate_limits",
        help_text=_("For the Workspace scope: the workspace limited."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rate_limits",
        help_text=_("For the User scope: the user limited, in every workspace."),
    )
    api_key_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("For the API key scope: the id of the key limited.")
    )
    rpm = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        verbose_name=_("requests per minute"),
        help_text=_("Empty: no limit."),
    )
    tpm = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        verbose_name=_("tokens per minute"),
        help_text=_("Empty: no limit."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(scope="user", user__isnull=False),
                name="one_rate_limit_per_user",
                violation_error_message=_("This user already has a rate limit."),
            ),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=models.Q(scope="workspace", workspace__isnull=False),
                name="one_rate_limit_per_workspace",
                violation_error_message=_("This workspace already has a rate limit."),
            ),
            models.UniqueConstraint(
                fields=["api_key_id"],
                condition=models.Q(scope="api_key", api_key_id__isnull=False),
                name="one_rate_limit_per_api_key",
                violation_error_message=_("This API key already has a rate limit."),
            ),
            models.UniqueConstraint(
                fields=["scope"],
                condition=models.Q(
                    workspace__isnull=True, user__isnull=True, api_key_id__isnull=True
                ),
                name="one_default_rate_limit_per_scope",
                violation_error_message=_("This scope already has a default rate limit."),
            ),
        ]

    def __str__(self) -> str:
        target = self.user or self.workspace or self.api_key_id or "default"
        return f"{self.get_scope_display()} {target}: {self.rpm} rpm / {self.tpm} tpm"

    def clean(self) -> None:
        """A row names at most the target of its own scope."""
        errors = {}
        for scope, (field, attribute) in self.TARGETS.items():
            if scope != self.scope and getattr(self, attribute) is not None:
                errors[field] = _("Only for the %(scope)s scope.") % {"scope": scope.label}
        if errors:
            raise ValidationError(errors)

    @property
    def target_id(self) -> int | None:
        """The id of the user, workspace or key limited; None for the scope's default."""
        if self.scope not in self.TARGETS:
            return None
        return getattr(self, self.TARGETS[RateLimitScope(self.scope)][1])


class Granularity(models.TextChoices):
    HOUR = "hour", _("Hour")
    DAY = "day", _("Day")


class UsageRollup(models.Model):
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    # Kept, like the events it sums, when the workspace is deleted.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_rollups"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    provider_kind = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # A default in the database too: a worker still on the release before it rolls up
    # without the column while an upgrade rolls out.
    cached_requests = models.PositiveIntegerField(
        default=0, db_default=0, help_text=_("Requests answered from the response cache.")
    )
    estimated_requests = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    # The sums of the events' parts of their totals (UsageEvent), defaulted as cached_requests.
    cache_read_tokens = models.BigIntegerField(default=0, db_default=0)
    cache_write_tokens = models.BigIntegerField(default=0, db_default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0, db_default=0)
    reasoning_tokens = models.BigIntegerField(default=0, db_default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    duration_ms_sum = models.BigIntegerField(default=0)
    duration_ms_max = models.PositiveIntegerField(default=0)
    ttft_ms_sum = models.BigIntegerField(default=0)
    ttft_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["granularity", "bucket_start"], name="rollup_bucket"),
            models.Index(
                fields=["workspace", "granularity", "bucket_start"], name="rollup_ws_bucket"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00} {self.model}"


class RollupState(models.Model):
    """The highest UsageEvent id already folded into rollups (a single row, pk=1)."""

    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rolled up to event {self.last_event_id}"


class Plan(models.Model):
    """What a workspace pays monthly, what usage that includes, and what it may configure.

    A workspace without a `Subscription` is on the plan with slug "free".
    """

    FREE_SLUG = "free"

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=40, unique=True)
    description = models.CharField(max_length=255, blank=True)
    monthly_price = AmountField(
        max_digits=10, decimal_places=2, default=Decimal(0), help_text=_("USD per month")
    )
    included_cost = AmountField(
        max_digits=12,
        decimal_places=2,
        default=Decimal(0),
        help_text=_("Usage cost in USD included each month; usage beyond it is overage."),
    )
    included_tokens = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_("Tokens included each month (covers their share of the usage cost)."),
    )
    max_budget_cost = AmountField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Highest monthly cost budget a workspace admin may set; empty: no cap."),
    )
    max_budget_tokens = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_("Highest monthly token budget a workspace admin may set; empty: no cap."),
    )
    default_rpm = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("default requests per minute")
    )
    default_tpm = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("default tokens per minute")
    )
    stripe_price_id = models.CharField(
        max_length=100, blank=True, help_text=_("The Stripe recurring price for checkout.")
    )
    active = models.BooleanField(default=True, help_text=_("Offered on the plan page."))
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "monthly_price"]
        constraints = [
            models.CheckConstraint(
                condition=_not_negative("monthly_price", "included_cost", "max_budget_cost"),
                name="plan_amounts_not_negative",
                violation_error_message=_("Plan prices and amounts cannot be negative."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAST_DUE = "past_due", _("Past due")
    CANCELED = "canceled", _("Canceled")


class Subscription(models.Model):
    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    # The last Stripe event applied, so a replayed or out-of-order delivery changes nothing.
    stripe_last_event_id = models.CharField(max_length=100, blank=True)
    stripe_last_event_created = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.workspace} on {self.plan} ({self.status})"

    def clean(self) -> None:
        start, end = self.current_period_start, self.current_period_end
        if start is not None and end is not None and end <= start:
            raise ValidationError({"current_period_end": _("The period must end after it starts.")})


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    PAID = "paid", _("Paid")


class Invoice(models.Model):
    """A month of one workspace: usage lines from the rollups, plan price and overage.

    Drafts are recomputed when the monthly job runs again; issued and paid invoices are frozen.
    """

    # Kept (with the name copied) when the workspace is deleted: invoices are accounting records.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    workspace_name = models.CharField(max_length=100)
    number = models.CharField(max_length=40, unique=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(
        max_length=6, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="invoices")
    plan_name = models.CharField(max_length=60)
    plan_price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal(0))
    included_cost = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal(0))
    included_tokens = models.BigIntegerField(null=True, blank=True)
    usage_cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    usage_tokens = models.BigIntegerField(default=0)
    allowance_applied = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    overage = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    currency = models.CharField(max_length=3, default="USD")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "workspace_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "period_start"], name="one_invoice_per_workspace_month"
            )
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.workspace_name} {self.period_start:%Y-%m}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    provider_kind = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    requests = models.PositiveIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))

    class Meta:
        ordering = ["provider_kind", "model"]

    def __str__(self) -> str:
        return f"{self.provider_kind}/{self.model} ${self.cost}"
