"""Plans and subscriptions: which plan a workspace is on, what it includes, what it allows.

A workspace without a subscription, or whose subscription was canceled, is on the Free plan.
Every plan or status change goes through `subscription_change`, which records an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.formats import localize
from django.utils.translation import gettext as _

from workspaces.models import Workspace
from workspaces.services import audit_record

from .models import Plan, RateLimit, RateLimitScope, Subscription, SubscriptionStatus

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")

# The plans a fresh installation offers (the data migration 0003 holds a frozen copy).
DEFAULT_PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "description": "For trying AURAX out.",
        "monthly_price": Decimal("0"),
        "included_cost": Decimal("1.00"),
        "max_budget_cost": Decimal("100.00"),
        "max_budget_tokens": 50_000_000,
        "default_rpm": 20,
        "default_tpm": 40_000,
        "position": 0,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "For individuals and small teams.",
        "monthly_price": Decimal("20.00"),
        "included_cost": Decimal("20.00"),
        "max_budget_cost": Decimal("1000.00"),
        "max_budget_tokens": 500_000_000,
        "default_rpm": 60,
        "default_tpm": 200_000,
        "position": 1,
    },
    {
        "slug": "team",
        "name": "Team",
        "description": "For organisations: no budget cap, higher rate limits.",
        "monthly_price": Decimal("99.00"),
        "included_cost": Decimal("100.00"),
        "max_budget_cost": None,
        "max_budget_tokens": None,
        "default_rpm": 300,
        "default_tpm": 1_000_000,
        "position": 2,
    },
]


def plans_seed() -> None:
    """Create the default plans that are missing (a flushed test database, a fresh install)."""
    for plan in DEFAULT_PLANS:
        Plan.objects.get_or_create(slug=plan["slug"], defaults=plan)


def plan_free_get() -> Plan:
    plan = Plan.objects.filter(slug=Plan.FREE_SLUG).first()
    if plan is None:
        plans_seed()
        plan = Plan.objects.get(slug=Plan.FREE_SLUG)
    return plan


def plan_list_available() -> list[Plan]:
    return list(Plan.objects.filter(active=True))


def subscription_for(workspace_id: int) -> Subscription | None:
    return Subscription.objects.select_related("plan").filter(workspace_id=workspace_id).first()


def plan_for_workspace(workspace_id: int) -> Plan:
    """The plan in force: a live subscription's (active or past due), else Free."""
    subscription = subscription_for(workspace_id)
    if subscription and subscription.status != SubscriptionStatus.CANCELED:
        return subscription.plan
    return plan_free_get()


def budget_limit_errors(*, plan: Plan, cost_limit: Decimal | None, token_limit: int | None):
    """Why a workspace budget is beyond what the plan allows (empty when it is within)."""
    errors = []
    if plan.max_budget_cost is not None and cost_limit is not None:
        if cost_limit > plan.max_budget_cost:
            errors.append(
                _("The %(plan)s plan allows a monthly cost limit of at most $%(max)s.")
                % {"plan": plan.name, "max": localize(plan.max_budget_cost)}
            )
    if plan.max_budget_tokens is not None and token_limit is not None:
        if token_limit > plan.max_budget_tokens:
            errors.append(
                _("The %(plan)s plan allows a monthly token limit of at most %(max)s tokens.")
                % {"plan": plan.name, "max": localize(plan.max_budget_tokens)}
            )
    return errors


def allowance_covered(
    *,
    included_cost: Decimal,
    included_tokens: int | None,
    usage_cost: Decimal,
    usage_tokens: int,
) -> Decimal:
    """The part of the usage cost the plan's allowance pays for.

    The cost allowance covers up to its amount; a token allowance covers the included tokens'
    share of the month's cost. When a plan has both, the more generous one applies.
    """
    covered = min(usage_cost, included_cost)
    if included_tokens and usage_tokens:
        share = min(Decimal(1), Decimal(included_tokens) / Decimal(usage_tokens))
        covered = max(covered, (usage_cost * share).quantize(MICRO, rounding=ROUND_HALF_UP))
    return covered


def overage_for(*, usage_cost: Decimal, covered: Decimal) -> Decimal:
    return max(Decimal(0), usage_cost - covered).quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    utc = timezone.get_fixed_timezone(0)
    start = datetime(year, month, 1, tzinfo=utc)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True)
class AllowanceStatus:
    plan: Plan
    period_start: datetime
    period_end: datetime
    usage_cost: Decimal
    usage_tokens: int
    covered: Decimal
    overage: Decimal

    @property
    def used_percent(self) -> int:
        """Share of the cost allowance used (100+ once overage starts)."""
        if self.plan.included_cost:
            return round(self.usage_cost / self.plan.included_cost * 100)
        if self.plan.included_tokens:
            return round(self.usage_tokens / self.plan.included_tokens * 100)
        return 100 if self.usage_cost else 0


def allowance_status_for(workspace_id: int, now: datetime | None = None) -> AllowanceStatus:
    from .selectors import usage_summary

    now = timezone.localtime(now or timezone.now(), timezone.get_fixed_timezone(0))
    start, end = month_bounds(now.year, now.month)
    plan = plan_for_workspace(workspace_id)
    rows = usage_summary(workspace_id, start, end, group_by="provider")
    cost = sum((r.cost for r in rows), Decimal(0))
    tokens = sum(r.tokens for r in rows)
    covered = allowance_covered(
        included_cost=plan.included_cost,
        included_tokens=plan.included_tokens,
        usage_cost=cost,
        usage_tokens=tokens,
    )
    return AllowanceStatus(
        plan=plan,
        period_start=start,
        period_end=end,
        usage_cost=cost,
        usage_tokens=tokens,
        covered=covered,
        overage=overage_for(usage_cost=cost, covered=covered),
    )


def _ratelimit_follow_plan(*, workspace_id: int, old: Plan | None, new: Plan) -> None:
    """Give the workspace the new plan's default rpm/tpm, unless an operator customised them
    (a workspace row that no longer matches the old plan's defaults is left alone)."""
    row = RateLimit.objects.filter(
        scope=RateLimitScope.WORKSPACE, workspace_id=workspace_id
    ).first()
    if row is None:
        if new.default_rpm is None and new.default_tpm is None:
            return
        RateLimit.objects.create(
            scope=RateLimitScope.WORKSPACE,
            workspace_id=workspace_id,
            rpm=new.default_rpm,
            tpm=new.default_tpm,
        )
        return
    if old is not None and (row.rpm, row.tpm) == (old.default_rpm, old.default_tpm):
        row.rpm, row.tpm = new.default_rpm, new.default_tpm
        row.save(update_fields=["rpm", "tpm", "updated_at"])


def subscription_change(
    *,
    workspace: Workspace,
    plan: Plan | None = None,
    status: str | None = None,
    actor=None,
    source: str,
    current_period_start: datetime | None = None,
    current_period_end: datetime | None = None,
    stripe_customer_id: str | None = None,
    stripe_subscription_id: str | None = None,
    stripe_event: tuple[str, int] | None = None,
    ip: str | None = None,
) -> Subscription:
    """Create or update the workspace's subscription; only given fields change.

    A change of the effective plan or of the status is audited and moves the workspace's
    default rate limits along with the plan.
    """
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update()
            .select_related("plan")
            .filter(workspace=workspace)
            .first()
        )
        before = plan_for_workspace(workspace.id) if subscription is None else None
        if subscription is None:
            subscription = Subscription(workspace=workspace, plan=plan or before)
            old_plan, old_status = before, None
        else:
            old_status = subscription.status
            old_plan = (
                plan_free_get() if old_status == SubscriptionStatus.CANCELED else subscription.plan
            )
        if plan is not None:
            subscription.plan = plan
        if status is not None:
            subscription.status = status
        if current_period_start is not None:
            subscription.current_period_start = current_period_start
        if current_period_end is not None:
            subscription.current_period_end = current_period_end
        if stripe_customer_id:
            subscription.stripe_customer_id = stripe_customer_id
        if stripe_subscription_id:
            subscription.stripe_subscription_id = stripe_subscription_id
        if stripe_event is not None:
            subscription.stripe_last_event_id, subscription.stripe_last_event_created = stripe_event
        subscription.save()

        new_plan = (
            plan_free_get()
            if subscription.status == SubscriptionStatus.CANCELED
            else subscription.plan
        )
        if new_plan.pk != getattr(old_plan, "pk", None) or subscription.status != old_status:
            audit_record(
                workspace=workspace,
                actor=actor,
                action="billing.plan_change",
                target=subscription,
                data={
                    "from_plan": getattr(old_plan, "slug", None),
                    "to_plan": new_plan.slug,
                    "from_status": old_status,
                    "to_status": subscription.status,
                    "source": source,
                },
                ip=ip,
            )
        if new_plan.pk != getattr(old_plan, "pk", None):
            _ratelimit_follow_plan(workspace_id=workspace.id, old=old_plan, new=new_plan)
    return subscription
