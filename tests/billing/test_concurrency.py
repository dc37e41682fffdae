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
