import asyncio

import pytest
from asgiref.sync import sync_to_async

from gateway import pipeline
from gateway.errors import GatewayError
from providers.types import Message, TextDelta, Usage
from tests.gateway.conftest import model_for, usage_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


def ask(caller, credential, text, **kwargs):
    return pipeline.stream(
        **caller,
        model=model_for(credential),
        messages=[Message("user", text)],
        source="chat",
        reference="test:1",
        **kwargs,
    )


async def test_a_finished_stream_records_one_usage_event_with_provider_tokens(caller, credential):
    s = ask(caller, credential, '@reply="one two three"')
    events = [e async for e in s]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.split() == ["one", "two", "three"]
    reported = next(e for e in events if isinstance(e, Usage))
    [event] = await usage_events()
    assert event.status == "ok"
    assert (event.input_tokens, event.output_tokens) == (
        reported.input_tokens,
        reported.output_tokens,
    )
    assert event.estimated is False
    assert event.provider_kind == "openai" and event.model == "fake-small"
    assert event.credential_id == credential.id and event.reference == "test:1"
    assert event.ttft_ms is not None and event.duration_ms >= event.ttft_ms
    assert s.outcome.status == "ok" and s.outcome.cost == event.cost


async def test_without_reported_usage_tokens_are_counted_and_marked_estimated(caller, credential):
    s = ask(caller, credential, '@reply="alpha beta gamma delta" @no_usage')
    [e async for e in s]
    [event] = await usage_events()
    assert event.estimated is True
    assert event.output_tokens >= 4 and event.input_tokens > 0


async def test_stop_ends_the_stream_closes_the_upstream_and_bills_what_was_produced(
    caller, credential, fake_upstream
):
    s = ask(caller, credential, "@tokens=500 @delay=0.02")
    received = []
    async for event in s:
        if isinstance(event, TextDelta):
            received.append(event.text)
        if len(received) == 5:
            asyncio.get_running_loop().call_later(0.01, s.stop)
    assert 5 <= len(received) < 100
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: fake_upstream.requests[-1]["disconnected"]
    )
    [event] = await usage_events()
    assert event.status == "stopped"
    assert event.estimated is True  # the provider never got to report usage
    assert 5 <= event.output_tokens < 100


async def test_a_cancelled_caller_is_recorded_as_client_gone(caller, credential, fake_upstream):
    async def consume():
        async for _event in ask(caller, credential, "@tokens=500 @delay=0.02"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [event] = await usage_events()
    assert event.status == "client_gone"
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: fake_upstream.requests[-1]["disconnected"]
    )


async def test_a_caller_closing_early_is_recorded_as_client_gone(caller, credential):
    s = ask(caller, credential, "@tokens=50 @delay=0.01")
    async for event in s:
        if isinstance(event, TextDelta):
            break
    await s.aclose()
    await s.aclose()  # idempotent
    [event] = await usage_events()
    assert event.status == "client_gone"


async def test_an_upstream_error_is_raised_typed_and_recorded_once(caller, credential):
    s = ask(caller, credential, "@error=context")
    with pytest.raises(GatewayError) as raised:
        [e async for e in s]
    assert raised.value.code == "context_too_long"
    [event] = await usage_events()
    assert event.status == "error" and event.error_code == "context_too_long"
    assert event.output_tokens == 0


async def test_a_call_the_provider_answered_costs_its_tokens(caller, credential, fake_small_priced):
    [e async for e in ask(caller, credential, '@reply="one two three"')]
    [event] = await usage_events()
    assert event.input_tokens > 0 and event.cost > 0  # so the zeros below mean something


@pytest.mark.parametrize(
    "text",
    ["@error=context", "@error=auth", "@status=503"],
    ids=["context-too-long", "bad-key", "overloaded"],
)
async def test_a_call_the_provider_refused_costs_nothing(
    caller, credential, fake_small_priced, text
):
    with pytest.raises(GatewayError):
        [e async for e in ask(caller, credential, f"{text} a long enough question to count")]
    [event] = await usage_events()  # one event, as for every call
    assert event.status == "error" and event.error_code
    assert (event.input_tokens, event.output_tokens, event.cost) == (0, 0, 0)
    assert event.estimated is False


async def test_a_call_refused_at_admission_costs_nothing(caller, credential, fake_small_priced):
    from billing.models import RateLimit, RateLimitScope

    await RateLimit.objects.acreate(scope=RateLimitScope.USER, user=caller["user"], rpm=0)
    with pytest.raises(GatewayError):
        [e async for e in ask(caller, credential, "never sent")]
    [event] = await usage_events()
    assert event.error_code == "rate_limited"
    assert (event.input_tokens, event.cost) == (0, 0)


async def test_a_call_stopped_before_it_was_sent_costs_nothing(
    caller, credential, fake_small_priced, fake_upstream
):
    s = ask(caller, credential, "@tokens=50 stopped at once")
    await sync_to_async(s.admit)()  # as the chat does, on its database thread
    s.stop()  # Stop pressed before the generation made its call
    assert [e async for e in s] == []
    assert fake_upstream.requests == []
    [event] = await usage_events()
    assert event.status == "stopped"
    assert (event.input_tokens, event.output_tokens, event.cost) == (0, 0, 0)


async def test_an_error_mid_stream_keeps_the_tokens_already_streamed(caller, credential):
    s = ask(caller, credential, "@tokens=20 @stream_error=server @error_after=5")
    received = []
    with pytest.raises(GatewayError):
        async for event in s:
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert "".join(received) == "tok1 tok2 tok3 tok4 tok5 "
    [event] = await usage_events()
    assert event.status == "error" and event.output_tokens >= 5


async def test_an_unknown_model_fails_fast_without_a_usage_event(caller, credential):
    s = pipeline.stream(
        **caller, model="no-such-model", messages=[Message("user", "hi")], source="chat"
    )
    with pytest.raises(GatewayError) as raised:
        [e async for e in s]
    assert raised.value.code == "model_unavailable"
    assert await usage_events() == []


async def test_a_menu_model_that_is_not_available_is_named_without_its_credential_id(
    caller, credential
):
    s = pipeline.stream(
        **caller, model=f"{credential.id + 1}:gone", messages=[Message("user", "hi")], source="chat"
    )
    with pytest.raises(GatewayError) as raised:
        [e async for e in s]
    assert raised.value.status == 404
    assert raised.value.message == "The model “gone” is not available to you."


async def test_a_model_whose_circuit_is_open_is_named_as_in_the_menu_and_retried_later(
    caller, credential, settings
):
    from providers.circuit import circuit_failure

    settings.PROVIDER_CIRCUIT_FAILURES = 1
    settings.PROVIDER_CIRCUIT_COOLDOWN = 30
    await sync_to_async(circuit_failure)(credential.id)

    with pytest.raises(GatewayError) as raised:
        [e async for e in ask(caller, credential, "hi")]

    error = raised.value
    assert (error.code, error.status) == ("overloaded", 503)
    assert 29 <= error.retry_after <= 30
    assert error.message.startswith("The model “fake-small (Fake)” is temporarily unavailable")
    assert str(credential.id) not in error.message


async def test_complete_returns_the_whole_answer(caller, credential):
    completion = await pipeline.complete(
        **caller,
        model=model_for(credential),
        messages=[Message("user", '@reply="Short title"')],
        source="chat",
    )
    assert completion.text.strip() == "Short title"
    assert len(await usage_events()) == 1


async def test_admission_run_ahead_on_the_callers_thread_fails_the_first_iteration(
    caller, credential
):
    from billing.models import RateLimit, RateLimitScope

    await RateLimit.objects.acreate(scope=RateLimitScope.USER, user=caller["user"], rpm=0)
    s = ask(caller, credential, '@reply="never sent"')
    await sync_to_async(s.admit)()  # raises nothing: the error waits for the iteration
    with pytest.raises(GatewayError) as raised:
        [e async for e in s]
    assert raised.value.code == "rate_limited"
    [event] = await usage_events()
    assert event.status == "error" and event.error_code == "rate_limited"


async def test_an_admitted_stream_makes_no_database_hop_before_the_upstream(
    caller, credential, monkeypatch
):
    from aurax import db_threads
    from billing.ledger import aledger_flush

    s = ask(caller, credential, '@reply="one two"')
    await sync_to_async(s.admit)()
    hops = []
    real = db_threads._run
    monkeypatch.setattr(
        db_threads, "_run", lambda f, a, k: (hops.append(f.__name__), real(f, a, k))[1]
    )
    first = await s.__anext__()
    # Only the process's background work may run meanwhile: the ledger writer, the lease reaper.
    background = {"_drain", "reap"}
    assert isinstance(first, TextDelta) and set(hops) <= background
    [e async for e in s]
    await aledger_flush()  # the row is queued by the stream, written by the ledger writer
    assert set(hops) <= background | {"ledger_flush"}
    [event] = await usage_events()
    assert event.output_tokens == 2


async def test_a_whole_answer_is_asked_of_the_upstream_in_one_response(
    caller, credential, fake_upstream
):
    completion = await pipeline.complete(
        **caller,
        model=model_for(credential),
        messages=[Message("user", '@reply="one two three"')],
        source="chat",
    )

    assert completion.text.split() == ["one", "two", "three"]
    assert fake_upstream.requests[-1]["json"].get("stream") is not True
    [event] = await usage_events()
    assert (event.output_tokens, event.estimated) == (completion.usage.output_tokens, False)
    assert event.status == "ok"


async def test_a_streamed_answer_is_asked_of_the_upstream_as_a_stream(
    caller, credential, fake_upstream
):
    [e async for e in ask(caller, credential, '@reply="one two"')]

    assert fake_upstream.requests[-1]["json"]["stream"] is True


async def test_prompt_cache_parts_price_the_call_at_the_listed_cache_prices(
    caller, anthropic_credential
):
    """A model genai-prices lists: the reads, the writes and the hour-long writes the
    provider reported each cost their own price."""
    from billing.pricing import cost_compute

    s = pipeline.stream(
        **caller,
        model=model_for(anthropic_credential, "claude-sonnet-4-5"),
        messages=[Message("user", '@reply="ok" @cached=900 @cache_write=50 @cache_write_1h=300')],
        source="chat",
    )
    [e async for e in s]

    [event] = await usage_events()
    assert (event.cache_read_tokens, event.cache_write_tokens) == (900, 350)
    assert s.outcome.cache_write_1h_tokens == event.cache_write_1h_tokens == 300
    parts = {"cache_read_tokens": 900, "cache_write_tokens": 350}
    price = sync_to_async(cost_compute)
    tokens = {"input_tokens": event.input_tokens, "output_tokens": event.output_tokens}
    kind = {"provider_kind": "anthropic", "model": "claude-sonnet-4-5"}
    hour = await price(**kind, **tokens, **parts, cache_write_1h_tokens=300)
    five_minutes = await price(**kind, **tokens, **parts)
    uncached = await price(**kind, **tokens)
    assert event.cost == hour.amount and hour.known
    assert five_minutes.amount < hour.amount and five_minutes.amount < uncached.amount
