"""Rollups computed by a real Celery worker match the raw ledger to the cent."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing import tasks
from billing.models import RollupState, UsageEvent, UsageRollup
from billing.selectors import usage_summary
from tests.billing.conftest import record_call


def record(workspace, user, model, input_tokens, output_tokens, created_at=None, **kw):
    event = record_call(
        workspace,
        user,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        status=kw.get("status", "ok"),
        cache_read_tokens=kw.get("cache_read_tokens", 0),
        cache_write_tokens=kw.get("cache_write_tokens", 0),
        cache_write_1h_tokens=kw.get("cache_write_1h_tokens", 0),
        reasoning_tokens=kw.get("reasoning_tokens", 0),
        ttft_ms=100,
        duration_ms=1000,
    )
    if created_at:
        UsageEvent.objects.filter(pk=event.pk).update(created_at=created_at)
    return event


def rollup_totals(granularity):
    return UsageRollup.objects.filter(granularity=granularity).aggregate(
        cost=Sum("cost"),
        requests=Sum("requests"),
        tokens=Sum("input_tokens"),
        cache_read=Sum("cache_read_tokens"),
        cache_write=Sum("cache_write_tokens"),
        cache_write_1h=Sum("cache_write_1h_tokens"),
        reasoning=Sum("reasoning_tokens"),
    )


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_rolls_events_up_exactly_and_idempotently(
    workspace, owner, member, celery_worker, settings
):
    now = timezone.now()
    for hours_ago, model, tokens in [
        (0, "gpt-4o-mini", 1234),
        (1, "gpt-4o", 999),
        (30, "gpt-4o", 77),
    ]:
        record(
            workspace,
            owner,
            model,
            tokens,
            tokens // 2,
            now - timedelta(hours=hours_ago),
            cache_read_tokens=tokens // 4,
            cache_write_tokens=tokens // 8,
            cache_write_1h_tokens=tokens // 16,  # of those written, kept an hour
            reasoning_tokens=2,
        )
        record(
            workspace, member, model, tokens, 3, now - timedelta(hours=hours_ago), status="error"
        )
    raw = UsageEvent.objects.aggregate(cost=Sum("cost"))["cost"]

    tasks.usage_rollup.delay()
    _wait_for(lambda: rollup_totals("day")["requests"] == 6)

    assert rollup_totals("hour")["cost"] == raw == rollup_totals("day")["cost"]
    assert rollup_totals("hour")["requests"] == 6
    assert UsageRollup.objects.filter(granularity="hour").aggregate(e=Sum("errors"))["e"] == 3
    # The prompt-cache and reasoning parts of the totals are summed with them.
    parts = (
        1234 // 4 + 999 // 4 + 77 // 4,
        1234 // 8 + 999 // 8 + 77 // 8,
        1234 // 16 + 999 // 16 + 77 // 16,
        2 * 3,
    )
    for granularity in ("hour", "day"):
        totals = rollup_totals(granularity)
        assert (
            totals["cache_read"],
            totals["cache_write"],
            totals["cache_write_1h"],
            totals["reasoning"],
        ) == parts
    rows_before = list(UsageRollup.objects.order_by("id").values_list("cost", "requests"))

    stamp = RollupState.objects.get(pk=1).updated_at
    tasks.usage_rollup.delay()  # again: nothing changes
    _wait_for(lambda: RollupState.objects.get(pk=1).updated_at > stamp)
    rows_after = list(UsageRollup.objects.order_by("id").values_list("cost", "requests"))
    assert sorted(rows_after) == sorted(rows_before)

    late = record(workspace, owner, "gpt-4o", 5000, 5000, now - timedelta(hours=30))
    tasks.usage_rollup.delay()
    _wait_for(lambda: rollup_totals("day")["requests"] == 7)

    assert rollup_totals("day")["cost"] == raw + late.cost
    start, end = now - timedelta(days=3), now + timedelta(hours=1)
    summary = usage_summary(workspace.id, start, end, group_by="model")
    assert sum(r.cost for r in summary) == raw + late.cost
    assert (
        sum(r.cache_read_tokens for r in summary),
        sum(r.cache_write_tokens for r in summary),
        sum(r.cache_write_1h_tokens for r in summary),
        sum(r.reasoning_tokens for r in summary),
    ) == (parts)
    assert Decimal(rollup_totals("hour")["cost"]).quantize(Decimal("0.01")) == (
        (raw + late.cost).quantize(Decimal("0.01"))
    )


def _wait_for(condition, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not get there in time")


def test_the_summary_reads_the_tail_not_yet_rolled_up(workspace, owner):
    now = timezone.now()
    tasks.usage_rollup()  # run in-process: nothing to roll yet
    event = record(workspace, owner, "gpt-4o", 100, 100)

    summary = usage_summary(workspace.id, now - timedelta(hours=1), now + timedelta(hours=1))

    assert sum(r.cost for r in summary) == event.cost
    assert sum(r.requests for r in summary) == 1


def test_answers_from_the_response_cache_are_counted_in_the_rollups_and_the_tail(workspace, owner):
    now = timezone.now()
    record(workspace, owner, "gpt-4o", 100, 100, now - timedelta(hours=2))
    for _ in range(2):
        record(workspace, owner, "gpt-4o", 0, 0, now - timedelta(hours=2), status="cached")
    tasks.usage_rollup()  # in-process: the three above are rolled up
    record(workspace, owner, "gpt-4o", 0, 0, status="cached")  # the tail

    def cached(granularity):
        rows = UsageRollup.objects.filter(granularity=granularity)
        return rows.aggregate(c=Sum("cached_requests"), r=Sum("requests"))

    assert cached("hour") == cached("day") == {"c": 2, "r": 3}
    [row] = usage_summary(
        workspace.id, now - timedelta(hours=3), now + timedelta(hours=1), group_by="model"
    )
    assert (row.requests, row.cached, row.errors) == (4, 3, 0)


def test_pruning_keeps_events_not_yet_rolled_up(workspace, owner, settings):
    settings.USAGE_RETENTION_DAYS = 30
    old = timezone.now() - timedelta(days=40)
    record(workspace, owner, "gpt-4o", 1, 1, old)
    assert tasks.usage_prune() == 0

    tasks.usage_rollup()
    record(workspace, owner, "gpt-4o", 1, 1, old)  # late, not rolled yet

    assert tasks.usage_prune() == 1
    assert UsageEvent.objects.count() == 1
