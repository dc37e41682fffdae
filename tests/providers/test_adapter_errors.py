"""Each fault of the fake upstream becomes the right taxonomy error, for every protocol."""

import asyncio

import pytest

from providers.adapters import adapter_for
from providers.types import (
    ProviderAuthenticationError,
    ProviderBadRequest,
    ProviderContentFiltered,
    ProviderContextTooLong,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUpstreamError,
    TextDelta,
)

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")

KINDS = ["openai", "anthropic", "gemini", "ollama"]

FAULTS = [
    ("@status=401", ProviderAuthenticationError, False),
    ("@status=403", ProviderAuthenticationError, False),
    ("@status=429 @retry_after=7", ProviderRateLimited, True),
    ("@status=503", ProviderOverloaded, True),
    ("@status=529", ProviderOverloaded, True),
    ("@status=500", ProviderUpstreamError, True),
    ("@status=504", ProviderTimeout, True),
    ("@status=400", ProviderBadRequest, False),
    ("@error=context", ProviderContextTooLong, False),
    ("@error=content_filter", ProviderContentFiltered, False),
    ("@cut_after=2", ProviderUpstreamError, True),
    ("@malformed_after=2", ProviderUpstreamError, True),
    ("@truncate_after=2", ProviderUpstreamError, True),
    ("@stream_error=overloaded", ProviderOverloaded, True),
]


async def consume(kind, fake_upstream, text, api_key="sk-test-key-1234"):
    events = []
    adapter = adapter_for(kind)
    async for event in adapter.stream(target_for(fake_upstream, kind, api_key), chat(text)):
        events.append(event)
    return events


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("directive", "error_class", "retryable"), FAULTS)
async def test_each_fault_maps_to_its_taxonomy_class(
    kind, directive, error_class, retryable, fake_upstream
):
    if kind == "ollama" and directive == "@error=content_filter":
        pytest.skip("Ollama has no content filter")
    with pytest.raises(error_class) as caught:
        await consume(kind, fake_upstream, f"hello @tokens=5 {directive}")

    assert type(caught.value) is error_class
    assert caught.value.retryable is retryable
    assert str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_rate_limits_carry_the_retry_after_seconds(kind, fake_upstream):
    with pytest.raises(ProviderRateLimited) as caught:
        await consume(kind, fake_upstream, "@status=429 @retry_after=7")

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("kind", KINDS)
async def test_text_streamed_before_a_cut_reaches_the_consumer_first(kind, fake_upstream):
    received = []
    with pytest.raises(ProviderUpstreamError):
        async for event in adapter_for(kind).stream(
            target_for(fake_upstream, kind), chat("@tokens=5 @cut_after=2")
        ):
            received.append(event)

    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "tok1 tok2 "


@pytest.mark.parametrize("kind", KINDS)
async def test_a_hanging_provider_times_out(kind, fake_upstream, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    with pytest.raises(ProviderTimeout):
        await asyncio.wait_for(consume(kind, fake_upstream, "@hang"), 5)


async def test_a_provider_stalling_mid_stream_times_out(fake_upstream, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    with pytest.raises(ProviderTimeout):
        await asyncio.wait_for(consume("openai", fake_upstream, "@tokens=5 @hang_after=2"), 5)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rejected_key_is_an_authentication_error(kind, fake_upstream):
    with pytest.raises(ProviderAuthenticationError):
        await consume(kind, fake_upstream, "hi", api_key="sk-invalid-0000")


@pytest.mark.parametrize("kind", KINDS)
async def test_non_streaming_calls_map_errors_too(kind, fake_upstream):
    with pytest.raises(ProviderOverloaded):
        await adapter_for(kind).complete(target_for(fake_upstream, kind), chat("@status=503"))


async def test_an_unreachable_provider_is_an_upstream_error(unused_tcp_port):
    from providers.types import Target

    target = Target(kind="openai", base_url=f"http://127.0.0.1:{unused_tcp_port}/v1", api_key="k")
    with pytest.raises(ProviderUpstreamError) as caught:
        await adapter_for("openai").complete(target, chat("hi"))

    assert "connect" in str(caught.value)
