"""Reads: usage over time (rollups plus the not-yet-rolled tail), budget status, costs by
reference."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    TOKEN_PARTS,
    Budget,
    BudgetScope,
    Granularity,
    UsageEvent,
    UsageRollup,
    UsageStatus,
)
from .quotas import budgets_for, period_label, period_start_for, scope_usage
from .rollups import rollup_watermark

GROUPS = {
    "day": None,
    "hour": None,
    "model": ("provider_kind", "model"),
    "provider": ("provider_kind",),
    "member": ("user__email",),  # unique: the id would only show as noise beside it
    "day_model": ("provider_kind", "model"),  # after the day
}


@dataclass
class UsageRow:
    key: tuple
    requests: int = 0
    errors: int = 0
    cached: int = 0  # answered from the response cache
    input_tokens: int = 0
    output_tokens: int = 0
    # Parts of the two totals (billing.models.TOKEN_PARTS)
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # of the writes, those kept an hour
    reasoning_tokens: int = 0
    cost: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def usage_summary(
    workspace_id: int | None,
    start: datetime,
    end: datetime,
    group_by: str = "day",
) -> list[UsageRow]:
    """Exact totals between start and end (any workspace when workspace_id is None), grouped
    by "day", "hour", "model", "provider", "member" or "day_model" (keys: day, provider
    kind, model).

    Rolled-up hours come from `UsageRollup`; events past the rollup watermark come from the
    raw ledger. Start and end are rounded to whole hours.
    """
    utc = timezone.get_fixed_timezone(0)
    watermark = rollup_watermark()
    rollups = UsageRollup.objects.filter(
        granularity=Granularity.HOUR, bucket_start__gte=start, bucket_start__lt=end
    )
    tail = UsageEvent.objects.filter(id__gt=watermark, created_at__gte=start, created_at__lt=end)
    if workspace_id is not None:
        rollups = rollups.filter(workspace_id=workspace_id)
        tail = tail.filter(workspace_id=workspace_id)

    if group_by in ("day", "hour", "day_model"):
        trunc = TruncHour if group_by == "hour" else TruncDay
        rollups = rollups.annotate(g=trunc("bucket_start", tzinfo=utc))
        tail = tail.annotate(g=trunc("created_at", tzinfo=utc))
        fields: tuple = ("g", *(GROUPS[group_by] or ()))
    else:
        fields = GROUPS[group_by]

    rows: dict[tuple, UsageRow] = {}

    def merge(values):
        for v in values:
            key = tuple(v[f] for f in fields)
            row = rows.setdefault(key, UsageRow(key=key))
            row.requests += v["r"] or 0
            row.errors += v["e"] or 0
            row.cached += v["h"] or 0
            row.input_tokens += v["i"] or 0
            row.output_tokens += v["o"] or 0
            for part in TOKEN_PARTS:
                setattr(row, part, getattr(row, part) + (v[part] or 0))
            row.cost += v["c"] or Decimal(0)

    merge(
        rollups.values(*fields)
        .annotate(
            r=Sum("requests"),
            e=Sum("errors"),
            h=Sum("cached_requests"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            **{part: Sum(part) for part in TOKEN_PARTS},
            c=Sum("cost"),
        )
        .order_by()
    )
    merge(
        tail.values(*fields)
        .annotate(
            r=Count("id"),
            e=Count("id", filter=Q(status=UsageStatus.ERROR)),
            h=Count("id", filter=Q(status=UsageStatus.CACHED)),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            **{part: Sum(part) for part in TOKEN_PARTS},
            c=Sum("cost"),
        )
        .order_by()
    )
    return sorted(rows.values(), key=lambda r: tuple(str(k) for k in r.key))


def usage_series(
    workspace_id: int | None, start: datetime, end: datetime, bucket: str = "day"
) -> list[UsageRow]:
    """`usage_summary` by "hour" or "day", with a row for every bucket from the one holding
    `start` up to `end` (zero where nothing happened), so a chart's bars are evenly spaced in
    time."""
    utc = timezone.get_fixed_timezone(0)
    found = {r.key[0]: r for r in usage_summary(workspace_id, start, end, group_by=bucket)}
    moment = start.astimezone(utc).replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        moment = moment.replace(hour=0)
    step = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    series = []
    while moment < end:
        series.append(found.get(moment) or UsageRow(key=(moment,)))
        moment += step
    return series


def _percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def latency_by_model(workspace_id: int | None, start: datetime, end: datetime) -> list[dict]:
    """p50/p95 of duration and time-to-first-token per model, from the raw ledger (so within
    the retention window), both over the same calls: those a provider answered in full.
    Refused calls (no upstream call, 0 ms), failed, stopped and abandoned ones would only
    blur the figures."""
    events = UsageEvent.objects.filter(
        created_at__gte=start, created_at__lt=end, status=UsageStatus.OK
    )
    if workspace_id is not None:
        events = events.filter(workspace_id=workspace_id)
    durations: dict[tuple, list[int]] = defaultdict(list)
    ttfts: dict[tuple, list[int]] = defaultdict(list)
    for kind, model, duration, ttft in events.values_list(
        "provider_kind", "model", "duration_ms", "ttft_ms"
    ).iterator():
        durations[(kind, model)].append(duration)
        if ttft is not None:
            ttfts[(kind, model)].append(ttft)
    result = []
    for key in sorted(durations):
        d, t = sorted(durations[key]), sorted(ttfts[key])
        result.append(
            {
                "provider_kind": key[0],
                "model": key[1],
                "requests": len(d),
                "p50_ms": _percentile(d, 0.5),
                "p95_ms": _percentile(d, 0.95),
                "ttft_p50_ms": _percentile(t, 0.5),
                "ttft_p95_ms": _percentile(t, 0.95),
            }
        )
    return result


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period_label: str
    spent_cost: Decimal
    spent_tokens: int
    reserved_cost: Decimal
    used_share: float  # 0..1+ of the tighter limit
    soft_reached: bool
    hard_reached: bool

    @property
    def used_percent(self) -> int:
        return round(self.used_share * 100)


def budget_status_for(workspace_id: int, user_id: int | None) -> list[BudgetStatus]:
    """The budgets that apply to a user in a workspace and how far each is used; any
    `soft_reached` means the UI shows a banner."""
    budgets = [
        b
        for b in budgets_for(workspace_id=workspace_id, user_id=user_id, api_key_id=None)
        if b.scope in (BudgetScope.WORKSPACE, BudgetScope.MEMBER)
    ]
    if not budgets:
        return []
    start = period_start_for()
    usage = scope_usage([b.scope_key for b in budgets], start)
    statuses = []
    for b in budgets:
        u = usage[b.scope_key]
        shares = []
        if b.cost_limit:
            shares.append(float(u.spent_cost / b.cost_limit))
        if b.token_limit:
            shares.append(u.spent_tokens / b.token_limit)
        share = max(shares, default=0.0)
        statuses.append(
            BudgetStatus(
                budget=b,
                period_label=period_label(start),
                spent_cost=u.spent_cost,
                spent_tokens=u.spent_tokens,
                reserved_cost=u.reserved_cost,
                used_share=share,
                soft_reached=share >= b.soft_threshold_percent / 100,
                hard_reached=b.hard and share >= 1,
            )
        )
    return statuses


def budget_banner_for(workspace_id: int, user_id: int | None) -> BudgetStatus | None:
    """The most-used budget past its soft threshold, for a banner; None when all is well."""
    warned = [s for s in budget_status_for(workspace_id, user_id) if s.soft_reached]
    return max(warned, key=lambda s: s.used_share, default=None)


def usage_total_for_references(references: list[str]) -> dict[str, dict]:
    """{reference: {"cost": Decimal, "input_tokens", "output_tokens", "estimated": bool}}."""
    rows = (
        UsageEvent.objects.filter(reference__in=references)
        .values("reference")
        .annotate(
            cost=Sum("cost"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            estimated_count=Count("id", filter=Q(estimated=True)),
        )
        .order_by()
    )
    return {
        r["reference"]: {
            "cost": r["cost"] or Decimal(0),
            "input_tokens": r["input_tokens"] or 0,
            "output_tokens": r["output_tokens"] or 0,
            "estimated": bool(r["estimated_count"]),
        }
        for r in rows
    }


def usage_cost_of_reference(field: str) -> Subquery:
    """The summed cost of the ledger rows whose reference is the outer row's `field`: a
    list annotates its rows with it in its own query, not one query per row."""
    return Subquery(
        UsageEvent.objects.filter(reference=OuterRef(field))
        .order_by()
        .values("reference")
        .annotate(total=Sum("cost"))
        .values("total")[:1]
    )


def top_spenders(start: datetime, end: datetime, limit: int = 10) -> list[dict]:
    """Workspaces by cost in the period, across all of them (staff dashboard)."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    watermark = rollup_watermark()
    for row in (
        UsageRollup.objects.filter(
            granularity=Granularity.HOUR, bucket_start__gte=start, bucket_start__lt=end
        )
        .values("workspace_id")
        .annotate(c=Sum("cost"))
        .order_by()
    ):
        totals[row["workspace_id"]] += row["c"] or 0
    for row in (
        UsageEvent.objects.filter(id__gt=watermark, created_at__gte=start, created_at__lt=end)
        .values("workspace_id")
        .annotate(c=Sum("cost"))
        .order_by()
    ):
        totals[row["workspace_id"]] += row["c"] or 0
    from workspaces.models import Workspace

    names = dict(Workspace.objects.filter(id__in=totals).values_list("id", "name"))
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    # Usage outlives a deleted workspace (workspace_id None): it still counts, under one line.
    return [
        {"workspace_id": w, "name": names.get(w, "?") if w else _("Deleted workspaces"), "cost": c}
        for w, c in ranked
    ]
