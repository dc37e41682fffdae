"""Folding raw usage events into hourly and daily rows.

The aggregation runs in SQL (GROUP BY over the events, then over the hourly rows for days).
A run recomputes whole buckets instead of adding increments, which makes it idempotent: the
buckets it recomputes are those touched by events newer than the last run's watermark (this
is how late events with an old `created_at` are caught) plus the two most recent hours (where
transactions that committed out of id order may land).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, DecimalField, IntegerField, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncHour
from django.utils import timezone

from .models import TOKEN_PARTS, Granularity, RollupState, UsageEvent, UsageRollup, UsageStatus

GROUP_FIELDS = ("workspace_id", "user_id", "provider_kind", "model")


def _hour_aggregates():
    zero = Value(0)
    return {
        "n_requests": Count("id"),
        "n_errors": Count("id", filter=Q(status=UsageStatus.ERROR)),
        "n_cached": Count("id", filter=Q(status=UsageStatus.CACHED)),
        "n_estimated": Count("id", filter=Q(estimated=True)),
        "sum_input": Sum("input_tokens"),
        "sum_output": Sum("output_tokens"),
        **{part: Sum(part) for part in TOKEN_PARTS},
        "sum_cost": Sum("cost"),
        "sum_duration": Sum("duration_ms"),
        "max_duration": Max("duration_ms"),
        "sum_ttft": Coalesce(Sum("ttft_ms"), zero, output_field=IntegerField()),
        "n_ttft": Count("ttft_ms"),
    }


def _rows(granularity: str, queryset) -> list[UsageRollup]:
    return [
        UsageRollup(
            granularity=granularity,
            bucket_start=row["bucket"],
            workspace_id=row["workspace_id"],
            user_id=row["user_id"],
            provider_kind=row["provider_kind"],
            model=row["model"],
            requests=row["n_requests"],
            errors=row["n_errors"],
            cached_requests=row["n_cached"],
            estimated_requests=row["n_estimated"],
            input_tokens=row["sum_input"] or 0,
            output_tokens=row["sum_output"] or 0,
            **{part: row[part] or 0 for part in TOKEN_PARTS},
            cost=row["sum_cost"] or 0,
            duration_ms_sum=row["sum_duration"] or 0,
            duration_ms_max=row["max_duration"] or 0,
            ttft_ms_sum=row["sum_ttft"] or 0,
            ttft_count=row["n_ttft"],
        )
        for row in queryset
    ]


def _hour_floor(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def usage_rollup_run() -> dict:
    utc = timezone.get_fixed_timezone(0)
    with transaction.atomic():
        RollupState.objects.get_or_create(pk=1)
        state = RollupState.objects.select_for_update().get(pk=1)
        watermark = UsageEvent.objects.aggregate(m=Max("id"))["m"] or 0
        now = timezone.now()
        hours = set(
            UsageEvent.objects.filter(id__gt=state.last_event_id, id__lte=watermark)
            .annotate(bucket=TruncHour("created_at", tzinfo=utc))
            .values_list("bucket", flat=True)
            .distinct()
        )
        current = _hour_floor(now.astimezone(utc))
        hours |= {current, current - timedelta(hours=1)}
        in_hours = Q()
        for hour in hours:
            in_hours |= Q(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))

        UsageRollup.objects.filter(granularity=Granularity.HOUR, bucket_start__in=hours).delete()
        hourly = (
            UsageEvent.objects.filter(in_hours, id__lte=watermark)
            .annotate(bucket=TruncHour("created_at", tzinfo=utc))
            .values("bucket", *GROUP_FIELDS)
            .annotate(**_hour_aggregates())
            .order_by()
        )
        UsageRollup.objects.bulk_create(_rows(Granularity.HOUR, hourly), batch_size=500)

        days = {h.replace(hour=0) for h in hours}
        in_days = Q()
        for day in days:
            in_days |= Q(bucket_start__gte=day, bucket_start__lt=day + timedelta(days=1))
        UsageRollup.objects.filter(granularity=Granularity.DAY, bucket_start__in=days).delete()
        daily = (
            UsageRollup.objects.filter(in_days, granularity=Granularity.HOUR)
            .annotate(bucket=TruncDay("bucket_start", tzinfo=utc))
            .values("bucket", *GROUP_FIELDS)
            .annotate(
                n_requests=Sum("requests"),
                n_errors=Sum("errors"),
                n_cached=Sum("cached_requests"),
                n_estimated=Sum("estimated_requests"),
                sum_input=Sum("input_tokens"),
                sum_output=Sum("output_tokens"),
                **{part: Sum(part) for part in TOKEN_PARTS},
                sum_cost=Sum("cost", output_field=DecimalField(max_digits=14, decimal_places=6)),
                sum_duration=Sum("duration_ms_sum"),
                max_duration=Max("duration_ms_max"),
                sum_ttft=Sum("ttft_ms_sum"),
                n_ttft=Sum("ttft_count"),
            )
            .order_by()
        )
        UsageRollup.objects.bulk_create(_rows(Granularity.DAY, daily), batch_size=500)

        state.last_event_id = watermark
        state.save(update_fields=["last_event_id", "updated_at"])
    return {"hours": len(hours), "days": len(days), "watermark": watermark}


def rollup_watermark() -> int:
    state = RollupState.objects.filter(pk=1).first()
    return state.last_event_id if state else 0


def usage_prune_run() -> int:
    """Delete raw events past the retention that are already folded into rollups."""
    days = getattr(settings, "USAGE_RETENTION_DAYS", 90)
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = UsageEvent.objects.filter(
        created_at__lt=cutoff, id__lte=rollup_watermark()
    ).delete()
    return deleted
