"""The /v1 hot path keeps every guarantee while caching rules per process: changes made
anywhere reach every process at once, and no accepted request loses its ledger row."""

import asyncio
import json
import threading
import time
from decimal import Decimal
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Sum

from billing.ledger import journals_replay, ledger_flush
from billing.models import BudgetCounter, BudgetScope, RateLimit, RateLimitScope, UsageEvent
from billing.pricing import BILLING_RULES_GENERATION
from billing.quotas import period_start_for
from billing.services import budget_upsert
from providers.models import CatalogModel
from providers.routing import GenerationCache, generation_bump
from tests.api.client import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


def body(text="@tokens=8", **extra):
    return {"model": "fake-small", "messages": [{"role": "user", "content": text}], **extra}


async def post(payload, headers):
    return await AsyncClient().post(
        "/v1/chat/completions",
        data=json.dumps(payload),
        content_type="application/json",
        headers=headers,
    )


def test_a_bump_empties_every_processs_copy():
    # Two caches on one generation key stand for two server processes sharing the cache.
    first, second = GenerationCache("tests:generation"), GenerationCache("tests:generation")
    loads = []

    def load(name):
        def loader():
            loads.append(name)
            return len(loads)

        return loader

    assert first.get_or_load("k", load("first")) == 1
    assert second.get_or_load("k", load("second")) == 2
    assert first.get_or_load("k", load("first")) == 1  # cached
    generation_bump("tests:generation")

    assert first.get_or_load("k", load("first")) == 3
    assert second.get_or_load("k", load("second")) == 4


def test_a_cache_that_lost_the_generation_never_revives_an_old_copy():
    from django.core.cache import cache

    copy = GenerationCache("tests:lost")
    assert copy.get_or_load("k", lambda: "old") == "old"
    cache.clear()  # a flushed Redis, an evicted key

    assert copy.get_or_load("k", lambda: "new") == "new"


def _poll(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_expired_copy_is_served_while_a_database_thread_reloads_it():
    copy = GenerationCache("tests:expired", ttl=0.05)
    loaded_on = []

    def load(value):
        def loader():
            loaded_on.append(threading.current_thread().name)
            return value

        return loader

    assert copy.get_or_load("k", load("old")) == "old"
    time.sleep(0.06)

    assert copy.get_or_load("k", load("new")) == "old"  # no wait for the reload
    _poll(lambda: copy.get_or_load("k", load("newer")) == "new")
    assert loaded_on[0] == threading.current_thread().name
    assert loaded_on[1].startswith("aurax-db"), "reloaded in the background"
    assert len(loaded_on) == 2, "once: the fresh copy is served without another reload"


def test_a_copy_past_its_max_age_is_reloaded_before_it_is_served():
    copy = GenerationCache("tests:old", ttl=0.01)
    assert copy.get_or_load("k", lambda: "old") == "old"
    time.sleep(0.07)  # past 6 x ttl

    assert copy.get_or_load("k", lambda: "new") == "new"


def test_a_reload_that_fails_keeps_serving_the_copy_and_tries_again():
    copy = GenerationCache("tests:failing", ttl=0.05)
    assert copy.get_or_load("k", lambda: "old") == "old"
    time.sleep(0.06)
    attempts = []

    def broken():
        attempts.append(1)
        raise RuntimeError("database gone")

    assert copy.get_or_load("k", broken) == "old"
    _poll(lambda: attempts and not copy._reloading)
    assert copy.get_or_load("k", lambda: "new") == "old"  # a new reload is under way
    _poll(lambda: copy.get_or_load("k", lambda: "newer") == "new")


async def test_a_disabled_model_is_refused_at_once_after_being_served(auth, credential):
    assert (await post(body(), auth)).status_code == 200

    await sync_to_async(
        lambda: [
            row.__setattr__("enabled", False) or row.save()
            for row in CatalogModel.objects.filter(credential=credential, model_id="fake-small")
        ]
    )()

    assert (await post(body(), auth)).status_code == 404


async def test_a_budget_set_after_requests_were_served_applies_to_the_next_one(auth, api_key):
    key = api_key[0]
    assert (await post(body(), auth)).status_code == 200  # "no budget" is now cached

    await sync_to_async(budget_upsert)(
        workspace_id=key.workspace_id, cost_limit=Decimal("0"), token_limit=1, hard=True
    )

    response = await post(body(), auth)
    assert response.status_code == 429, response.content
    assert "budget" in response.json()["error"]["message"].lower()


async def test_spend_from_before_a_budget_counts_against_it(auth, api_key):
    key = api_key[0]
    first = await post(body(), auth)
    used = first.json()["usage"]["total_tokens"]

    # A budget that the earlier spend alone has used up, though set after it.
    await sync_to_async(budget_upsert)(
        workspace_id=key.workspace_id, cost_limit=None, token_limit=used + 10, hard=True
    )

    assert (await post(body(), auth)).status_code == 429


async def test_a_rate_limit_added_while_serving_applies_to_the_next_request(auth, api_key):
    assert (await post(body(), auth)).status_code == 200
    await sync_to_async(RateLimit.objects.create)(
        scope=RateLimitScope.API_KEY, api_key_id=api_key[0].pk, rpm=1
    )

    assert (await post(body(), auth)).status_code == 200
    limited = await post(body(), auth)
    assert limited.status_code == 429 and limited.headers["retry-after"]


async def test_many_concurrent_requests_each_leave_one_ledger_row_and_counted_spend(auth, api_key):
    key = api_key[0]
    await sync_to_async(budget_upsert)(
        workspace_id=key.workspace_id, cost_limit=Decimal("1000"), token_limit=None
    )
    streamed = [body(stream=True) if i % 2 else body() for i in range(24)]

    responses = await asyncio.gather(*(post(payload, auth) for payload in streamed))

    assert [r.status_code for r in responses] == [200] * 24

    @sync_to_async
    def ledger():
        ledger_flush()
        rows = UsageEvent.objects.filter(api_key_id=key.pk)
        tokens = rows.aggregate(t=Sum("input_tokens") + Sum("output_tokens"))["t"]
        counter = BudgetCounter.objects.get(
            scope_key=f"ws:{key.workspace_id}", period_start=period_start_for()
        )
        return rows.count(), tokens, counter.spent_tokens

    count, tokens, counted = await ledger()
    assert count == 24
    assert counted == tokens


async def test_a_failed_ledger_write_loses_nothing_and_counts_nothing_twice(auth, api_key):
    # The row and the counters commit together; a batch that fails stays in the journal
    # and is written, once, when the journal is replayed.
    key_scope = f"key:{api_key[0].pk}"

    @sync_to_async
    def ledger():
        counter = BudgetCounter.objects.filter(scope_key=key_scope).first()
        return (
            UsageEvent.objects.filter(api_key_id=api_key[0].pk).count(),
            counter.spent_tokens if counter else 0,
        )

    with mock.patch(
        "billing.ledger.spend_apply_in_transaction", side_effect=RuntimeError("disk full")
    ):
        response = await post(body(), auth)
        assert response.status_code == 200  # the caller never waits for the ledger
        await sync_to_async(ledger_flush)()
    assert await ledger() == (0, 0)

    assert await sync_to_async(journals_replay)() == 1
    assert await sync_to_async(journals_replay)() == 0
    count, spent = await ledger()
    usage = response.json()["usage"]
    assert (count, spent) == (1, usage["prompt_tokens"] + usage["completion_tokens"])


def test_budget_changes_bump_the_shared_billing_generation(workspace_for_budget):
    before = GenerationCache(BILLING_RULES_GENERATION).generation()
    budget_upsert(
        workspace_id=workspace_for_budget.pk,
        scope=BudgetScope.WORKSPACE,
        cost_limit=Decimal("5"),
        token_limit=None,
    )
    assert GenerationCache(BILLING_RULES_GENERATION).generation() != before


@pytest.fixture
def workspace_for_budget(api_user):
    return api_user.memberships.get().workspace


def test_generation_tokens_are_read_in_one_cache_call_per_block(db, monkeypatch):
    from django.core.cache import cache

    from providers.routing import GenerationCache, generations_read_once

    first, second = GenerationCache("tests:one-read:a"), GenerationCache("tests:one-read:b")
    first.generation(), second.generation()  # create both tokens
    calls = {"get": 0, "get_many": 0}
    inside_get_many = []
    real_get, real_get_many = cache.get, cache.get_many

    def counting_get(*args, **kwargs):
        if not inside_get_many:  # a backend's get_many may loop over get: one call still
            calls["get"] += 1
        return real_get(*args, **kwargs)

    def counting_get_many(*args, **kwargs):
        calls["get_many"] += 1
        inside_get_many.append(True)
        try:
            return real_get_many(*args, **kwargs)
        finally:
            inside_get_many.pop()

    monkeypatch.setattr(cache, "get", counting_get)
    monkeypatch.setattr(cache, "get_many", counting_get_many)
    with generations_read_once():
        assert first.get_or_load("k", lambda: 1) == 1
        assert second.get_or_load("k", lambda: 2) == 2
        first.generation(), second.generation()
    assert calls == {"get": 0, "get_many": 1}
    # Outside a block each read goes to the shared cache again.
    first.generation()
    assert calls["get"] == 1
