from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail

from billing.errors import QuotaExceeded
from billing.models import BudgetAlert, BudgetScope, UsageEvent
from billing.quotas import quota_release, quota_reserve, scope_usage
from billing.selectors import budget_banner_for, budget_status_for
from billing.services import budget_upsert
from tests.billing.conftest import record_call, settle


def reserve(workspace, user, input_tokens=1000, max_output_tokens=1000, **kw):
    return quota_reserve(
        workspace_id=workspace.id,
        user_id=user.id,
        provider_kind="openai",
        model="m",
        input_tokens=input_tokens,
        max_output_tokens=max_output_tokens,
        **kw,
    )


def test_reserve_refuses_past_the_hard_limit_with_a_clear_message(
    workspace, owner, dollar_per_mtok
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("3"), token_limit=None)
    settle(workspace, owner, reserve(workspace, owner), 2000, 1000)  # $3 of $3 spent

    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, owner)

    assert refused.value.scope == "workspace" and refused.value.reached
    assert refused.value.message.startswith("Workspace budget of $3.00 for ")
    assert refused.value.message.endswith(
        " reached: a workspace admin can raise it on the Usage page."
    )


def test_a_request_too_large_for_what_is_left_is_not_said_to_have_reached_the_budget(
    workspace, owner, dollar_per_mtok
):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("0.15"), token_limit=None)
    settle(workspace, owner, None, 96, 0)  # $0.096 spent: 64%

    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, owner, input_tokens=10, max_output_tokens=4096)  # $4.106 at worst

    message = refused.value.message
    assert not refused.value.reached
    assert "reached" not in message and "ask an admin" not in message
    assert message.startswith("Workspace budget of $0.15 for ")
    assert ": $0.054 left, and this request could cost up to $4.11 " in message
    assert "up to 4,096 output tokens" in message and "Lower max tokens" in message
    assert "in progress" not in message


def test_the_message_counts_what_requests_in_progress_hold(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("3"), token_limit=None)
    reserve(workspace, owner)  # $2 of $3 held, nothing spent

    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, owner)

    message = refused.value.message
    assert not refused.value.reached
    assert ": $1.00 left, and this request could cost up to $2.00 " in message
    assert message.endswith(" Requests in progress hold $2.00 of it until they finish.")


def test_the_message_names_the_limit_and_the_month(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("50.00"), token_limit=None)

    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, owner, max_output_tokens=60_000)

    assert refused.value.message.startswith("Workspace budget of $50.00 for ")
    assert refused.value.limit == Decimal("50.00")


def test_settle_releases_the_unused_rest(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("3"), token_limit=None)
    first = reserve(workspace, owner)
    settle(workspace, owner, first, input_tokens=1000, output_tokens=0)  # spent $1

    second = reserve(workspace, owner)  # fits only because $1 was given back

    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]
    assert usage.spent_cost == Decimal("1")
    assert usage.reserved_cost == second.cost == Decimal("2")


def test_release_gives_everything_back(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("2"), token_limit=None)
    quota_release(reserve(workspace, owner))

    reserve(workspace, owner)


def test_a_member_budget_refuses_that_member_only(workspace, owner, member, dollar_per_mtok):
    budget_upsert(
        workspace_id=workspace.id,
        scope=BudgetScope.MEMBER,
        user_id=member.id,
        cost_limit=None,
        token_limit=1500,
    )

    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, member)
    reserve(workspace, owner)

    assert refused.value.unit == "tokens"
    assert refused.value.message.startswith("Your budget in this workspace of 1,500 tokens for ")
    assert ": 1,500 tokens left, and this request could use up to 2,000 tokens " in (
        refused.value.message
    )


def test_an_api_key_budget_applies_to_that_key(workspace, owner, dollar_per_mtok):
    budget_upsert(
        workspace_id=workspace.id,
        scope=BudgetScope.API_KEY,
        api_key_id=77,
        cost_limit=Decimal("1"),
        token_limit=None,
    )

    reserve(workspace, owner)
    with pytest.raises(QuotaExceeded) as refused:
        reserve(workspace, owner, api_key_id=77)

    assert refused.value.scope == "api_key"
    assert refused.value.message.startswith("API key budget of $1.00 for ")
    assert refused.value.message.endswith(
        "Lower max tokens, or a key with a larger budget can be created on the API keys page."
    )


def test_a_soft_budget_warns_but_never_refuses(workspace, owner, dollar_per_mtok):
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1"), token_limit=None, hard=False)

    settle(workspace, owner, reserve(workspace, owner), 1000, 1000)
    reserve(workspace, owner)

    assert budget_banner_for(workspace.id, owner.id).spent_cost == Decimal("2")


def test_spend_without_a_budget_counts_once_a_budget_is_set(workspace, owner, dollar_per_mtok):
    settle(workspace, owner, None, 1000, 1000)  # $2 before any budget exists
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("3"), token_limit=None)

    with pytest.raises(QuotaExceeded):
        reserve(workspace, owner)


def test_the_soft_threshold_emails_workspace_admins_once_per_period(
    workspace, owner, member, dollar_per_mtok, eager_celery, django_capture_on_commit_callbacks
):
    budget_upsert(
        workspace_id=workspace.id,
        cost_limit=Decimal("10"),
        token_limit=None,
        soft_threshold_percent=50,
    )
    with django_capture_on_commit_callbacks(execute=True):
        settle(workspace, member, reserve(workspace, member), 1000, 1000)  # 20%
    assert len(mail.outbox) == 0
    assert budget_banner_for(workspace.id, member.id) is None

    with django_capture_on_commit_callbacks(execute=True):
        settle(workspace, member, reserve(workspace, member), 2000, 2000)  # 60%
        settle(workspace, member, reserve(workspace, member), 500, 500)  # 70%

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.email]
    assert "has used 70% of its budget" in mail.outbox[0].subject  # when sent, not the 50% set
    assert BudgetAlert.objects.filter(kind="soft").count() == 1
    status = budget_status_for(workspace.id, member.id)[0]
    assert status.soft_reached and not status.hard_reached and status.used_percent == 70


def test_the_alert_email_states_how_much_of_the_budget_is_used(
    workspace, owner, dollar_per_mtok, eager_celery, django_capture_on_commit_callbacks
):
    workspace.name = "bob"
    workspace.save()
    budget_upsert(
        workspace_id=workspace.id,
        cost_limit=Decimal("0.15"),
        token_limit=1000,
        soft_threshold_percent=50,
    )

    with django_capture_on_commit_callbacks(execute=True):
        settle(workspace, owner, None, 96, 0)  # $0.096 and 96 tokens: 64% of the cost limit

    [email] = mail.outbox
    assert email.subject == "bob has used 64% of its budget"
    assert email.body.startswith("Workspace budget in bob for ")
    assert ": $0.096 spent of $0.15; 96 of 1,000 tokens used (64%). " in email.body
    assert "Alerts are sent at 50% and at 100%." in email.body


def test_a_free_model_reserves_and_settles_at_zero_cost(workspace, owner):
    # Zero amounts must pass through the Redis scripts too (Lua's -0 is not an integer there).
    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("1"), token_limit=10_000)
    reservation = quota_reserve(
        workspace_id=workspace.id,
        user_id=owner.id,
        provider_kind="ollama",
        model="llama3",
        input_tokens=100,
        max_output_tokens=100,
    )
    assert reservation.cost == 0
    event = record_call(
        workspace,
        owner,
        provider_kind="ollama",
        model="llama3",
        input_tokens=100,
        output_tokens=50,
        ttft_ms=5,
        duration_ms=50,
        reservation=reservation,
    )
    assert event.cost == 0
    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]
    assert (usage.spent_tokens, usage.reserved_tokens, usage.reserved_cost) == (150, 0, 0)


def test_a_batch_gets_the_new_values_of_the_counters_it_updates(workspace, owner, member):
    """The ledger's budget-alert check uses these instead of reading the counters again:
    they must be what the table holds, for a new counter and for one that grows."""
    from types import SimpleNamespace

    from django.db import transaction

    from billing.models import BudgetCounter
    from billing.quotas import period_start_for, spend_apply_in_transaction

    start = period_start_for()

    def spend(user, cost, tokens):
        return SimpleNamespace(
            workspace_id=workspace.id,
            user_id=user.id,
            api_key_id=None,
            cost=Decimal(cost),
            tokens=tokens,
            period_start=start,
            reservation=None,
        )

    with transaction.atomic():
        first = spend_apply_in_transaction([spend(owner, "0.125", 10), spend(member, "1", 5)])
    with transaction.atomic():
        second = spend_apply_in_transaction([spend(member, "0.000001", 1)])

    table = {
        (c.scope_key, c.period_start): (c.spent_cost, c.spent_tokens)
        for c in BudgetCounter.objects.all()
    }
    workspace_key = (f"ws:{workspace.id}", start)
    assert first[workspace_key] == (Decimal("1.125"), 15)
    assert second[workspace_key] == (Decimal("1.125001"), 16) == table[workspace_key]
    assert set(first) <= set(table) and set(second) <= set(table)
    for key, values in second.items():
        assert values == table[key]
    assert all(isinstance(cost, Decimal) for cost, _tokens in [*first.values(), *second.values()])


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis quota store (services mode)")
def test_spend_settled_while_redis_is_unreachable_reaches_it_once_it_answers(
    workspace, owner, dollar_per_mtok, monkeypatch, caplog
):
    import redis

    from billing import quotas

    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("10"), token_limit=None)
    first = reserve(workspace, owner)  # $2 reserved
    answering = redis.client.Pipeline.execute

    def unreachable(self, *args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(quotas, "_settle_failing", False)
    monkeypatch.setattr(redis.client.Pipeline, "execute", unreachable)
    settle(workspace, owner, first, input_tokens=1000, output_tokens=0)  # $1: no error
    monkeypatch.setattr(redis.client.Pipeline, "execute", answering)

    assert UsageEvent.objects.count() == 1  # the ledger has it
    assert "settling calls in the Redis quota state failed" in caplog.text
    second = reserve(workspace, owner)
    settle(workspace, owner, second, input_tokens=2000, output_tokens=0)  # $2, and the first

    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]  # Redis' state
    assert usage.spent_cost == Decimal("3") and usage.reserved_cost == 0
    assert "Redis answers again: 1 kept settle steps sent" in caplog.text


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis quota store (services mode)")
def test_kept_settle_steps_reach_redis_with_the_lease_reaper_when_no_call_follows(
    workspace, owner, dollar_per_mtok, monkeypatch
):
    import redis

    from billing import quotas

    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("10"), token_limit=None)
    first = reserve(workspace, owner)
    answering = redis.client.Pipeline.execute

    def unreachable(self, *args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(redis.client.Pipeline, "execute", unreachable)
    settle(workspace, owner, first, input_tokens=1000, output_tokens=0)
    monkeypatch.setattr(redis.client.Pipeline, "execute", answering)

    quotas._leases.reap()  # what the reaper thread runs every half second

    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]
    assert usage.spent_cost == Decimal("1") and usage.reserved_cost == 0


@pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis quota store (services mode)")
def test_spend_whose_reply_redis_lost_is_not_counted_twice_when_sent_again(
    workspace, owner, member, dollar_per_mtok, monkeypatch, caplog
):
    """The connection drops (or times out) after Redis ran the settle steps: the process
    cannot tell them from steps Redis never got, so it sends them again; Redis skips them."""
    import redis

    from billing import quotas

    budget_upsert(workspace_id=workspace.id, cost_limit=Decimal("10"), token_limit=None)
    first, other = reserve(workspace, owner), reserve(workspace, member)  # $2 each
    answering = redis.client.Pipeline.execute

    def reply_lost(self, *args, **kwargs):
        answering(self, *args, **kwargs)  # Redis ran them
        raise redis.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(quotas, "_settle_failing", False)
    monkeypatch.setattr(redis.client.Pipeline, "execute", reply_lost)
    settle(workspace, owner, first, input_tokens=1000, output_tokens=0)  # $1
    monkeypatch.setattr(redis.client.Pipeline, "execute", answering)
    assert "settling calls in the Redis quota state failed" in caplog.text
    settle(workspace, member, other, input_tokens=2000, output_tokens=0)  # $2, and $1 again

    usage = scope_usage([f"ws:{workspace.id}"])[f"ws:{workspace.id}"]  # Redis' state
    assert usage.spent_cost == Decimal("3") and usage.reserved_cost == 0
    assert "Redis answers again: 1 kept settle steps sent" in caplog.text
