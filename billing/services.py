"""Writes: the usage ledger, budgets and the alerts they raise."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from workspaces.services import audit_record

from .ledger import UsageEntry, usage_write
from .models import Budget, BudgetAlert, BudgetCounter, BudgetScope, UsageEvent
from .pricing import Cost, cost_compute
from .quotas import Reservation, budgets_cached, period_start_for


def usage_entry_build(
    *,
    workspace_id: int,
    user_id: int | None,
    api_key_id: int | None = None,
    credential_id: int | None,
    provider_kind: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    estimated: bool,
    status: str,
    error_code: str = "",
    ttft_ms: int | None,
    duration_ms: int,
    request_id: str = "",
    source: str,
    reference: str | None = None,
    reservation: Reservation | None = None,
    cost: Cost | None = None,
) -> UsageEntry:
    """A finished call as a ledger row, priced (by `cost_compute` unless `cost` is given).
    The cache and reasoning counts are parts of the input and output totals (the hour-long
    writes part of the writes)."""
    if cost is None:
        cost = cost_compute(
            provider_kind=provider_kind,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens,
        )
    return UsageEntry(
        workspace_id=workspace_id,
        user_id=user_id,
        api_key_id=api_key_id,
        credential_id=credential_id,
        provider_kind=provider_kind,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        cache_write_1h_tokens=cache_write_1h_tokens,
        estimated=estimated,
        cost=cost.amount,
        price_known=cost.known,
        status=status,
        error_code=error_code,
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        request_id=request_id,
        source=source,
        reference=reference,
        created_at=timezone.now(),
        period_start=reservation.period_start if reservation else period_start_for(),
        reservation=reservation,
    )


def usage_record(**kwargs) -> UsageEvent:
    """Record one finished call (any ending) now, price it, and settle its reservation; the
    arguments are `usage_entry_build`'s. The pipeline queues its rows instead
    (`billing.ledger.usage_enqueue`); both end in the same batch write."""
    entry = usage_entry_build(**kwargs)
    usage_write([entry])
    return UsageEvent.objects.get(uid=entry.uid)


ausage_record = database_sync_to_async(usage_record)


def _used_share(budget: Budget, spent_cost: Decimal, spent_tokens: int) -> float:
    shares = []
    if budget.cost_limit:
        shares.append(float(spent_cost / budget.cost_limit))
    if budget.token_limit:
        shares.append(spent_tokens / budget.token_limit)
    return max(shares, default=0.0)


def budget_alerts_check(
    *,
    workspace_id: int,
    user_id: int | None,
    api_key_id: int | None,
    start=None,
    spent: Mapping[tuple[str, date], tuple[Decimal, int]] | None = None,
) -> None:
    """Raise each crossed threshold's alert once per period; the email goes after commit.
    `spent`: counters' values the caller just read, by (scope key, period start), as the
    ledger's batch gets them back from its updates; the others are read here."""
    budgets = budgets_cached(workspace_id=workspace_id, user_id=user_id, api_key_id=api_key_id)
    if not budgets:
        return
    start = start or period_start_for()
    known = spent or {}
    # Spent amounts only, so the durable counters (kept in both modes) are the source.
    by_scope = {
        b.scope_key: known[(b.scope_key, start)] for b in budgets if (b.scope_key, start) in known
    }
    unread = [b.scope_key for b in budgets if b.scope_key not in by_scope]
    if unread:
        by_scope.update(
            (key, (cost, tokens))
            for key, cost, tokens in BudgetCounter.objects.filter(
                scope_key__in=unread, period_start=start
            ).values_list("scope_key", "spent_cost", "spent_tokens")
        )
    for budget in budgets:
        spent_cost, spent_tokens = by_scope.get(budget.scope_key, (Decimal(0), 0))
        share = _used_share(budget, spent_cost, spent_tokens)
        kinds = []
        if share >= budget.soft_threshold_percent / 100:
            kinds.append(BudgetAlert.Kind.SOFT)
        if share >= 1:
            kinds.append(BudgetAlert.Kind.HARD)
        for kind in kinds:
            if BudgetAlert.objects.filter(budget=budget, period_start=start, kind=kind).exists():
                continue
            try:
                with transaction.atomic():
                    alert = BudgetAlert.objects.create(budget=budget, period_start=start, kind=kind)
            except IntegrityError:
                continue  # another process raised it first
            transaction.on_commit(lambda alert_id=alert.id: _alert_email_queue(alert_id))


def _alert_email_queue(alert_id: int) -> None:
    from .tasks import budget_alert_email

    budget_alert_email.delay(alert_id)


def budget_upsert(
    *,
    workspace_id: int,
    scope: str = BudgetScope.WORKSPACE,
    user_id: int | None = None,
    api_key_id: int | None = None,
    cost_limit: Decimal | None,
    token_limit: int | None,
    soft_threshold_percent: int = 80,
    hard: bool = True,
    actor=None,
    ip: str | None = None,
) -> Budget:
    """Create or change a budget, audited as `budget.change` with its limits before and after
    (`actor`: who made the change; None for the system)."""
    with transaction.atomic():
        lookup = {"scope": scope, "workspace_id": workspace_id}
        if scope == BudgetScope.MEMBER:
            lookup["user_id"] = user_id
        if scope == BudgetScope.API_KEY:
            lookup = {"scope": scope, "api_key_id": api_key_id}
        before = Budget.objects.select_for_update().filter(**lookup).first()
        budget, _ = Budget.objects.select_for_update().update_or_create(
            **lookup,
            defaults={
                "workspace_id": workspace_id,
                "cost_limit": cost_limit,
                "token_limit": token_limit,
                "soft_threshold_percent": soft_threshold_percent,
                "hard": hard,
            },
        )
        old, new = _budget_limits(before), _budget_limits(budget)
        if old != new:
            audit_record(
                workspace=budget.workspace,
                actor=actor,
                action="budget.change",
                target=budget,
                data={"scope": scope, "from": old, "to": new},
                ip=ip,
            )
    return budget


CENT = Decimal("0.01")


def _budget_limits(budget: Budget | None) -> dict | None:
    if budget is None:
        return None
    return {
        "cost_limit": (
            None if budget.cost_limit is None else str(budget.cost_limit.quantize(CENT))
        ),
        "token_limit": budget.token_limit,
        "soft_threshold_percent": budget.soft_threshold_percent,
        "hard": budget.hard,
    }


def budget_delete(*, budget: Budget) -> None:
    budget.delete()
