"""Budget leases: the pipeline's calls reserve from a per-process lease taken from the shared
store, so most calls cost no store round trip, and the limits hold exactly as before."""

import threading
from decimal import Decimal

import pytest

from billing import quotas
from billing.errors import QuotaExceeded
from billing.models import BudgetReservation
from billing.quotas import leases_return, quota_release, quota_reserve, scope_usage
from billing.services import budget_upsert
from tests.billing.conftest import settle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def store_calls(monkeypatch):
    """How many times the shared store was asked for a reservation."""
    calls = []
    store = quotas.quota_store()
    real = store.reserve
    monkeypatch.setattr(
        store,
        "reserve",
        lambda *a, **kw: (calls.append(kw.get("max_multiple", 1)), real(*a, **kw))[1],
    )
    return calls


def reserve(workspace, user):
    return quota_reserve(
        workspace_id=workspace.id,
        user_id=user.id,
        provider_kind="openai",
        model="m",
        input_tokens=1000,
        max_output_tokens=1000,
        lease=True,
    )


def ws_usage(workspace):
    return scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]


def test_calls_far_from_the_limit_share_one_store_reservation(
    workspace, owner, dollar_per_mtok, store_calls
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1000"), token_limit=None)

    held = [reserve(workspace, owner) for _ in range(20)]

    assert len(store_calls) == 1  # a lease of up to 32 calls' worst case
    assert ws_usage(workspace).reserved_cost == 32 * Decimal(2)
    for reservation in held:
        settle(workspace, owner, reservation, 1000, 100)
    assert ws_usage(workspace).spent_cost == 20 * Decimal("1.1")  # 1,100 tokens each
    leases_return()
    usage = ws_usage(workspace)
    assert (usage.reserved_cost, usage.reserved_tokens) == (0, 0)
    assert not BudgetReservation.objects.exists()


def test_leases_never_let_calls_past_the_hard_limit(workspace, owner, dollar_per_mtok):
    # Room for exactly 10 calls' worst case ($2 each), none settled yet.
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("20"), token_limit=None)

    admitted = [reserve(workspace, owner) for _ in range(10)]
    with pytest.raises(QuotaExceeded):
        reserve(workspace, owner)

    assert len(admitted) == 10
    assert ws_usage(workspace).reserved_cost == Decimal("20")


def test_near_the_limit_a_lease_takes_a_quarter_of_the_room_at_most(
    workspace, owner, dollar_per_mtok, store_calls
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("16"), token_limit=None)

    reserve(workspace, owner)

    # $16 of room, $2 per call: 8 calls' room, a quarter of it is 2 calls.
    assert ws_usage(workspace).reserved_cost == Decimal("4")


def test_a_lease_other_servers_hold_is_counted_by_the_store(workspace, owner, dollar_per_mtok):
    # Another process's lease is in the shared store: this process sees it as reserved.
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("20"), token_limit=None)
    other = quotas._Leases()
    original = quotas._leases
    quotas._leases = other
    try:
        reserve(workspace, owner)  # the other process: a lease of 2 calls ($4 of $20)
    finally:
        quotas._leases = original

    admitted = 0
    with pytest.raises(QuotaExceeded):
        for _ in range(20):
            reserve(workspace, owner)
            admitted += 1
    assert admitted == 8  # $16 left for this process
    other.reap_all()  # its one call is still drawn: the lease stays
    # The other process ends here (its lease lapses in the store): its reaper stops working.
    other._retired.clear()


def test_a_released_call_gives_its_share_back_to_the_lease(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("16"), token_limit=None)
    first = reserve(workspace, owner)  # lease of 2 calls
    second = reserve(workspace, owner)

    quota_release(first)  # never reached the upstream
    third = reserve(workspace, owner)

    assert third.lease is second.lease is first.lease
    assert ws_usage(workspace).reserved_cost == Decimal("4")


def test_an_idle_lease_goes_back_to_the_store(workspace, owner, dollar_per_mtok, monkeypatch):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1000"), token_limit=None)
    settle(workspace, owner, reserve(workspace, owner), 1000, 100)
    assert ws_usage(workspace).reserved_cost > 0
    # Idle from now on (set only here: the process's background reaper, started by earlier
    # tests, reads it too and would otherwise return the lease before the check above).
    monkeypatch.setattr(quotas, "LEASE_IDLE_SECONDS", 0.0)

    quotas._leases.reap()

    assert ws_usage(workspace).reserved_cost == 0


def test_the_reaper_takes_no_database_thread_while_no_lease_is_held(
    workspace, owner, dollar_per_mtok, monkeypatch
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1000"), token_limit=None)
    settle(workspace, owner, reserve(workspace, owner), 1000, 100)  # the reaper runs
    quotas._leases.reap_all()
    assert ws_usage(workspace).reserved_cost == 0
    # No lease held in the process (earlier tests may leave leases with calls never settled),
    # no settle step kept.
    monkeypatch.setattr(quotas._leases, "_current", {})
    monkeypatch.setattr(quotas._leases, "_retired", set())
    monkeypatch.setattr(quotas, "_unsettled", [])
    hops = []
    submit = quotas.db_submit
    monkeypatch.setattr(quotas, "db_submit", lambda fn: (hops.append(fn), submit(fn))[1])

    threading.Event().wait(quotas.LEASE_IDLE_SECONDS * 2)  # four of the reaper's rounds

    # (Only this process's lease book: a test may have left another one's reaper running.)
    assert [fn for fn in hops if getattr(fn, "__self__", None) is quotas._leases] == []


def test_a_changed_budget_gets_a_fresh_lease_and_the_old_one_is_returned(
    workspace, owner, dollar_per_mtok, store_calls
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1000"), token_limit=None)
    old = reserve(workspace, owner)  # a lease of $64, under the old limit
    settle(workspace, owner, old, 1000, 100)
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("40"), token_limit=None)

    new = reserve(workspace, owner)  # not refused: the old lease went back first

    assert len(store_calls) == 2 and new.lease is not old.lease
    # Only the new lease is held: $40 - $2.2 spent = $37.8 of room, a quarter is 4 calls.
    assert ws_usage(workspace).reserved_cost == Decimal("8")


def test_concurrent_threads_never_overdraw_the_budget(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("40"), token_limit=None)
    admitted, refused = [], []

    def worker():
        for _ in range(10):
            try:
                admitted.append(reserve(workspace, owner))
            except QuotaExceeded:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Never past the limit; a lease a thread retired with less than a call's room left
    # may leave that little unused.
    assert len(admitted) + len(refused) == 40
    assert 16 <= len(admitted) <= 20
    assert ws_usage(workspace).reserved_cost <= Decimal("40")


def test_a_lease_whose_calls_never_settle_is_forgotten_once_the_store_expired_it(
    workspace, owner, dollar_per_mtok, monkeypatch
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1000"), token_limit=None)
    book = quotas._Leases()  # this test's own lease book (no reaper thread: reaped here)
    monkeypatch.setattr(quotas, "_leases", book)
    never_settled = reserve(workspace, owner)
    book.reap()
    assert not book._idle_all()  # the call is drawn: the lease is kept

    # Past the draw window the lease is retired (it takes no more draws), still held...
    monkeypatch.setattr(quotas, "LEASE_DRAW_SECONDS", 0.0)
    book.reap()
    assert book._current == {} and book._retired == {never_settled.lease}
    # ...and past the store's expiry it is forgotten: the reaper has nothing left to do.
    monkeypatch.setattr(quotas, "LEASE_TTL_SECONDS", 0.0)
    book.reap()
    assert book._idle_all()
