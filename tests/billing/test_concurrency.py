"""Many parallel reservations against a nearly exhausted budget never overshoot it."""

import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, connections

from billing.errors import QuotaExceeded
from billing.models import ModelPriceOverride
from billing.quotas import quota_reserve, quota_settle, scope_usage
from billing.services import budget_upsert
from tests.billing.conftest import record_call
from tests.conftest import SERVICES_MODE
from tests.factories import UserFactory
from workspaces.models import Membership

ROOT = Path(__file__).resolve().parents[2]
RESERVATION = Decimal("2.00")  # 1,000 in + 1,000 out at $1,000 per million

WORKER_SCRIPT = """
import sys, django
django.setup()
from billing.errors import QuotaExceeded
from billing.quotas import quota_reserve
workspace_id, user_id, attempts = (int(a) for a in sys.argv[1:4])
granted = 0
for _ in range(attempts):
    try:
        quota_reserve(workspace_id=workspace_id, user_id=user_id, provider_kind="openai",
                      model="m", input_tokens=1000, max_output_tokens=1000)
        granted += 1
    except QuotaExceeded:
        pass
print(granted)
"""


def attempt(workspace_id, user_id, outcomes):
    try:
        reservation = quota_reserve(
            workspace_id=workspace_id,
            user_id=user_id,
            provider_kind="openai",
            model="m",
            input_tokens=1000,
            max_output_tokens=1000,
        )
        # Half the calls finish at once, spending half their reservation.
        if len(outcomes) % 2:
            quota_settle(reservation, actual_cost=Decimal("1.00"), actual_tokens=1000)
        outcomes.append("granted")
    except QuotaExceeded:
        outcomes.append("refused")
    finally:
        if connection.vendor != "sqlite":
            connection.close()


def nearly_exhausted_budget(workspace, owner):
    ModelPriceOverride.objects.create(
        provider_kind="openai", model="m", input_per_mtok=1000, output_per_mtok=1000
    )
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("100.00"), token_limit=None)
    # $90 of $100 already spent: room for five worst cases
    record_call(workspace, owner, model="m", input_tokens=90_000, ttft_ms=5, duration_ms=10)


def committed(workspace):
    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]
    return usage.spent_cost + usage.reserved_cost


@pytest.mark.django_db(transaction=True)
def test_parallel_threads_never_push_spending_past_the_hard_limit(workspace, owner):
    nearly_exhausted_budget(workspace, owner)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=attempt, args=(workspace.id, owner.id, outcomes)) for _ in range(24)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(outcomes) == 24
    assert "refused" in outcomes
    assert outcomes.count("granted") >= 5
    assert committed(workspace) <= Decimal("100.00")


@pytest.mark.skipif(not SERVICES_MODE, reason="two OS processes need PostgreSQL and Redis")
@pytest.mark.django_db(transaction=True)
def test_two_processes_never_push_spending_past_the_hard_limit(workspace, owner):
    nearly_exhausted_budget(workspace, owner)
    settings_dict = connections["default"].settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}"
        f"/{settings_dict['NAME']}"
    )
    env["DJANGO_SETTINGS_MODULE"] = "aurax.settings"
    args = [sys.executable, "-c", WORKER_SCRIPT, str(workspace.id), str(owner.id), "10"]
    workers = [
        subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    granted = [int(w.communicate(timeout=60)[0].strip().splitlines()[-1]) for w in workers]

    assert sum(granted) == 5  # exactly the room there was, split between the processes
    assert committed(workspace) == Decimal("100.00")


@pytest.mark.django_db(transaction=True)
def test_a_transaction_ended_by_a_deadlock_is_run_again():
    """Two writers lock two counters in opposite orders: PostgreSQL ends one of them, and it
    runs again (the other goes on), so both writes land."""
    from collections import Counter
    from datetime import date

    from django.db import transaction
    from django.db.models import F

    from billing.models import BudgetCounter
    from billing.quotas import _retry_when_locked

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer at a time: nothing to deadlock")
    start = date(2026, 1, 1)
    for key in ("a", "b"):
        BudgetCounter.objects.create(scope_key=key, period_start=start)
    both_hold_one = threading.Barrier(2, timeout=10)
    attempts, ended = Counter(), {}

    def crossing(name: str, first: str, second: str) -> None:
        @_retry_when_locked
        def commit():
            attempts[name] += 1
            with transaction.atomic():
                BudgetCounter.objects.filter(scope_key=first).update(
                    spent_tokens=F("spent_tokens") + 1
                )
                if attempts[name] == 1:
                    both_hold_one.wait()
                BudgetCounter.objects.filter(scope_key=second).update(
                    spent_tokens=F("spent_tokens") + 1
                )

        try:
            commit()
            ended[name] = "written"
        except Exception as error:
            ended[name] = repr(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=crossing, args=("one", "a", "b")),
        threading.Thread(target=crossing, args=("two", "b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert ended == {"one": "written", "two": "written"}
    assert sum(attempts.values()) == 3  # one of them was ended and ran again
    assert sorted(BudgetCounter.objects.values_list("spent_tokens", flat=True)) == [2, 2]


@pytest.mark.django_db
def test_a_new_period_s_counters_are_created_before_any_counter_is_locked(monkeypatch):
    """The usage of a scope and period this process has not seen creates its counters first,
    in one statement, then adds to each in order; one already seen is only added to."""
    from django.test.utils import CaptureQueriesContext

    from billing import quotas
    from billing.models import BudgetCounter

    # Earlier tests' counters, rolled back, may have had the same keys.
    monkeypatch.setattr(quotas, "_counters_known", {})

    user = UserFactory()
    workspace = Membership.objects.get(user=user).workspace
    with CaptureQueriesContext(connection) as first:
        record_call(workspace, user, input_tokens=10)
    with CaptureQueriesContext(connection) as again:
        record_call(workspace, user, input_tokens=10)

    def counter_writes(queries) -> list[str]:
        return [
            q["sql"].split()[0]
            for q in queries
            if "budgetcounter" in q["sql"] and q["sql"].split()[0] in ("INSERT", "UPDATE")
        ]

    created = counter_writes(first.captured_queries)
    assert created[0] == "INSERT" and set(created[1:]) == {"UPDATE"} and len(created) > 2
    assert set(counter_writes(again.captured_queries)) == {"UPDATE"}
    assert BudgetCounter.objects.filter(spent_tokens=20).count() == len(created) - 1
