"""Stopping a stream closes the upstream connection at once."""

import asyncio
import contextlib

import pytest

from providers.adapters import adapter_for
from providers.routing import Candidate, stream_with_fallback

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")

KINDS = ["openai", "anthropic", "gemini", "ollama"]


@pytest.mark.parametrize("kind", KINDS)
async def test_closing_the_iterator_disconnects_the_upstream(kind, fake_upstream):
    events = adapter_for(kind).stream(
        target_for(fake_upstream, kind), chat("@tokens=200 @delay=0.05")
    )
    await anext(events)
    await anext(events)

    await events.aclose()

    assert await fake_upstream.until(
        lambda: fake_upstream.requests[-1]["disconnected"], timeout=0.5
    )
    assert not fake_upstream.requests[-1]["completed"]


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_the_consuming_task_disconnects_the_upstream(kind, fake_upstream):
    first = asyncio.Event()

    async def consume():
        async with contextlib.aclosing(
            adapter_for(kind).stream(
                target_for(fake_upstream, kind), chat("@tokens=200 @delay=0.05")
            )
        ) as events:
            async for _event in events:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert await fake_upstream.until(
        lambda: fake_upstream.requests[-1]["disconnected"], timeout=0.5
    )


async def test_closing_the_fallback_stream_disconnects_the_upstream(fake_upstream):
    candidate = Candidate(
        credential_id=1,
        credential_name="fake",
        kind="openai",
        scope="global",
        model_id="fake-small",
        target=target_for(fake_upstream, "openai"),
    )
    events = stream_with_fallback([candidate], chat("@tokens=200 @delay=0.05"))
    await anext(events)

    await events.aclose()

    assert await fake_upstream.until(
        lambda: fake_upstream.requests[-1]["disconnected"], timeout=0.5
    )


async def test_a_stream_read_to_the_end_is_not_a_disconnect(fake_upstream):
    events = [
        e
        async for e in adapter_for("openai").stream(
            target_for(fake_upstream, "openai"), chat("@tokens=3")
        )
    ]

    assert events
    assert await fake_upstream.until(lambda: fake_upstream.requests[-1]["completed"], timeout=1)
    assert not fake_upstream.requests[-1]["disconnected"]
