"""The response cache (pipeline step 3): an answer kept for the callers that ask for it, found
again only by the same workspace for the same model, credential, messages and settings, billed
as "cached" (no tokens, no cost), and never a reason for a call to fail."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from gateway import pipeline
from gateway.errors import GatewayError
from gateway.response_cache import CachePolicy
from providers.types import Message, TextDelta
from tests.factories import UserFactory
from tests.gateway.conftest import (
    alias_create,
    model_for,
    openai_credential_create,
    usage_events,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]

USE = CachePolicy()  # look up any entry still kept, keep the answer


async def answer(caller, model, text='@reply="kept answer"', **kwargs):
    kwargs.setdefault("cache", USE)
    s = pipeline.stream(
        **caller, model=model, messages=[Message("user", text)], source="api", **kwargs
    )
    text = "".join([e.text async for e in s if isinstance(e, TextDelta)])
    return text, s


@sync_to_async
def other_caller():
    from workspaces.selectors import personal_workspace_get

    user = UserFactory()
    return {"user": user, "workspace": personal_workspace_get(user=user)}


@sync_to_async
def entries_aged(seconds: float) -> int:
    """Make every kept answer `seconds` older; how many there are."""
    cache = caches["responses"]
    keys = _keys(cache)
    for key in keys:
        value = cache.get(key)
        value["stored_at"] -= seconds
        cache.set(key, value)
    return len(keys)


def _keys(cache):
    if isinstance(cache, LocMemCache):  # its keys are made with the cache's prefix
        return [k.split(":", 2)[2] for k in cache._cache]
    client = cache._cache.get_client()
    prefix = cache.make_key("")
    return [k.decode()[len(prefix) :] for k in client.scan_iter(match=prefix + "*")]


async def test_an_identical_request_is_answered_from_the_cache_without_an_upstream_call(
    caller, credential, fake_upstream, fake_small_priced
):
    first, s1 = await answer(caller, model_for(credential))
    second, s2 = await answer(caller, model_for(credential))

    assert first == second == "kept answer"
    assert len(fake_upstream.posted()) == 1
    assert (s1.cache_age, s2.cache_age) == (None, 0)
    live, cached = await usage_events()
    assert live.status == "ok" and live.output_tokens > 0 and live.cost > 0
    assert cached.status == "cached"
    assert (cached.input_tokens, cached.output_tokens, cached.cost) == (0, 0, 0)
    assert (cached.provider_kind, cached.model, cached.credential_id) == (
        "openai",
        "fake-small",
        credential.id,
    )
    assert cached.ttft_ms is not None and cached.source == "api"
    assert s2.outcome.status == "cached" and s2.outcome.cost == 0


async def test_a_caller_that_does_not_ask_neither_reads_nor_keeps(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential), cache=None)  # the chat's calls
    await answer(caller, model_for(credential))
    await answer(caller, model_for(credential), cache=None)

    assert len(fake_upstream.posted()) == 3
    assert [e.status for e in await usage_events()] == ["ok", "ok", "ok"]


async def test_another_workspace_never_gets_the_answer(caller, credential, fake_upstream):
    await answer(caller, model_for(credential))
    stranger = await other_caller()
    text, s = await answer(stranger, model_for(credential))

    assert text == "kept answer" and s.cache_age is None
    assert len(fake_upstream.posted()) == 2
    assert [e.status for e in await usage_events()] == ["ok", "ok"]


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 40},
        {"top_p": 0.9},
        {"stop": ["END"]},
        {"seed": 7},
        {"text": '@reply="kept answer" and something else'},
    ],
    ids=["temperature", "max_tokens", "top_p", "stop", "a hint", "the message"],
)
async def test_a_request_asking_anything_else_of_the_model_misses(
    caller, credential, fake_upstream, change
):
    await answer(caller, model_for(credential))
    await answer(caller, model_for(credential), **change)

    assert len(fake_upstream.posted()) == 2


async def test_another_credential_for_the_same_model_misses(caller, credential, fake_upstream):
    second = await sync_to_async(openai_credential_create)(
        fake_upstream, name="Fake two", api_key="sk-test-key-5678"
    )
    await answer(caller, model_for(credential))
    await answer(caller, model_for(second))

    assert len(fake_upstream.posted()) == 2


async def test_an_answer_older_than_the_request_takes_is_not_used_and_is_replaced(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential))
    assert await entries_aged(120) == 1

    _, too_old = await answer(caller, model_for(credential), cache=CachePolicy(max_age=60))
    assert too_old.cache_age is None and len(fake_upstream.posted()) == 2
    _, fresh = await answer(caller, model_for(credential), cache=CachePolicy(max_age=60))
    assert fresh.cache_age is not None and fresh.cache_age < 60
    assert len(fake_upstream.posted()) == 2


async def test_any_age_is_taken_when_the_request_sets_no_limit(caller, credential, fake_upstream):
    await answer(caller, model_for(credential))
    await entries_aged(3600)

    _, s = await answer(caller, model_for(credential))
    assert s.cache_age >= 3600 and len(fake_upstream.posted()) == 1


async def test_no_lookup_calls_the_upstream_and_keeps_the_new_answer(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential))
    _, refreshed = await answer(caller, model_for(credential), cache=CachePolicy(lookup=False))
    _, reused = await answer(caller, model_for(credential))

    assert refreshed.cache_age is None and reused.cache_age == 0
    assert len(fake_upstream.posted()) == 2


async def test_no_store_keeps_nothing(caller, credential, fake_upstream):
    await answer(caller, model_for(credential), cache=CachePolicy(store=False))
    await answer(caller, model_for(credential))

    assert len(fake_upstream.posted()) == 2


async def test_an_answer_is_kept_no_longer_than_its_ttl(caller, credential, fake_upstream):
    await answer(caller, model_for(credential), cache=CachePolicy(ttl=1))
    await asyncio.sleep(1.3)
    await answer(caller, model_for(credential))

    assert len(fake_upstream.posted()) == 2


async def test_the_server_setting_caps_the_ttl_and_zero_turns_the_cache_off(
    caller, credential, fake_upstream, settings
):
    settings.RESPONSE_CACHE_MAX_AGE = 1
    await answer(caller, model_for(credential), cache=CachePolicy(ttl=3600))
    await asyncio.sleep(1.3)
    await answer(caller, model_for(credential))
    assert len(fake_upstream.posted()) == 2

    settings.RESPONSE_CACHE_MAX_AGE = 0
    await answer(caller, model_for(credential))
    await answer(caller, model_for(credential))
    assert len(fake_upstream.posted()) == 4


@pytest.mark.parametrize(
    "text",
    ["@status=500", '@reply="cut short" @cut_after=1', "@stream_error=server"],
    ids=["error", "dropped", "error mid-stream"],
)
async def test_a_failed_answer_is_not_kept(caller, credential, fake_upstream, text):
    with pytest.raises(GatewayError):
        await answer(caller, model_for(credential), text=text)

    assert [e.status for e in await usage_events()] == ["error"]
    assert await sync_to_async(_keys)(caches["responses"]) == []


async def test_a_stopped_answer_is_not_kept(caller, credential, fake_upstream):
    s = pipeline.stream(
        **caller,
        model=model_for(credential),
        messages=[Message("user", "@tokens=200 @delay=0.02")],
        source="api",
        cache=USE,
    )
    async for event in s:
        if isinstance(event, TextDelta):
            s.stop()
    assert s.outcome.status == "stopped"
    assert await sync_to_async(_keys)(caches["responses"]) == []


async def test_an_answer_from_a_fallback_is_not_kept_under_the_first_candidates_key(
    caller, anthropic_credential, credential, fake_upstream
):
    await alias_create("steady", (anthropic_credential, "fake-large"), (credential, "fake-small"))
    text = '@reply="from the fallback" @status=503 @only_model=fake-large'

    for _ in range(2):
        reply, _s = await answer(caller, "steady", text=text)
        assert reply == "from the fallback"

    assert [e.status for e in await usage_events()] == ["ok", "ok"]
    assert await sync_to_async(_keys)(caches["responses"]) == []


async def test_admission_runs_first_a_caller_over_its_limits_is_refused_even_when_cached(
    caller, credential, fake_upstream
):
    from billing.models import RateLimit, RateLimitScope

    await answer(caller, model_for(credential))
    await RateLimit.objects.acreate(scope=RateLimitScope.USER, user=caller["user"], rpm=0)

    with pytest.raises(GatewayError) as refused:
        await answer(caller, model_for(credential))
    assert refused.value.code == "rate_limited"
    assert [e.status for e in await usage_events()] == ["ok", "error"]


async def test_a_cache_that_does_not_answer_is_a_miss_not_a_failure(
    caller, credential, fake_upstream, settings, caplog
):
    settings.CACHES = {
        **settings.CACHES,
        "responses": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        },
    }
    for _ in range(2):
        text, s = await answer(caller, model_for(credential))
        assert text == "kept answer" and s.outcome.status == "ok"

    assert len(fake_upstream.posted()) == 2
    assert "response cache not read" in caplog.text
    assert "response cache not written" in caplog.text


async def test_whole_and_streamed_requests_share_an_entry(caller, credential, fake_upstream):
    await answer(caller, model_for(credential), whole=True)
    text, s = await answer(caller, model_for(credential))

    assert text == "kept answer" and s.cache_age == 0
    assert len(fake_upstream.posted()) == 1


async def test_a_hit_is_recorded_once_even_when_its_caller_goes_away(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential))
    s = pipeline.stream(
        **caller,
        model=model_for(credential),
        messages=[Message("user", '@reply="kept answer"')],
        source="api",
        cache=USE,
    )
    await s.__anext__()
    await s.aclose()

    [live, gone] = await usage_events()
    assert (live.status, gone.status) == ("ok", "client_gone")
    assert (gone.input_tokens, gone.output_tokens, gone.cost) == (0, 0, 0)
    assert len(fake_upstream.posted()) == 1


@sync_to_async
def response_cache_switch(caller, enabled: bool) -> None:
    """The workspace's owner turns its response cache off or on in its settings."""
    from workspaces.models import Membership
    from workspaces.services import workspace_update

    membership = Membership.objects.select_related("workspace").get(
        user=caller["user"], workspace=caller["workspace"]
    )
    caller["workspace"] = workspace_update(membership=membership, response_cache_enabled=enabled)


async def test_a_workspace_whose_cache_is_off_neither_reads_nor_keeps(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential))
    await response_cache_switch(caller, False)

    for _ in range(2):
        _text, s = await answer(caller, model_for(credential))
        assert s.cache_age is None
    assert len(fake_upstream.posted()) == 3
    assert len(await sync_to_async(_keys)(caches["responses"])) == 1  # the one kept before


async def test_turned_off_and_on_again_no_answer_kept_before_is_served(
    caller, credential, fake_upstream
):
    await answer(caller, model_for(credential))
    await response_cache_switch(caller, False)
    await response_cache_switch(caller, True)

    _text, after = await answer(caller, model_for(credential))
    _text, again = await answer(caller, model_for(credential))

    assert (after.cache_age, again.cache_age) == (None, 0)  # kept anew, then served
    assert len(fake_upstream.posted()) == 2


@pytest.mark.parametrize(
    ("header", "policy"),
    [
        ("max-age=60", CachePolicy(lookup=True, store=True, max_age=60)),
        ('Max-Age="60", no-store', CachePolicy(lookup=True, store=False, max_age=60)),
        ("no-cache", CachePolicy(lookup=False, store=True)),
        ("max-age=0", CachePolicy(lookup=False, store=True)),
        ("no-store", None),  # asks for nothing to be used
        ("max-age=soon", None),  # not a number: ignored, as HTTP says
        ("private, must-revalidate", None),
    ],
)
def test_cache_control_is_read_as_http_says(header, policy):
    from gateway.response_cache import policy_from_cache_control

    assert policy_from_cache_control(header) == policy
