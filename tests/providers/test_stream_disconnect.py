"""Stopping a stream closes the upstream connection at once."""

import asyncio
import contextlib
import json
import re

import pytest

from providers.adapters import adapter_for
from providers.routing import Candidate, stream_with_fallback
from providers.types import Finish, Target, TextDelta

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


@pytest.fixture
async def late_end_server():
    """An OpenAI-style upstream on keep-alive connections that sends each chunked SSE body's
    closing chunk 20 ms after `[DONE]`, as a separate write (the fake upstream sends both in
    one). Yields (base URL, connections accepted)."""
    accepted = []
    chunk = json.dumps({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    body = f"data: {chunk}\n\ndata: [DONE]\n\n".encode()

    async def serve(reader, writer):
        accepted.append(writer.get_extra_info("peername"))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n"
                )
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1", accepted
    server.close()


async def test_a_stream_read_to_its_end_leaves_its_connection_for_the_next_call(
    late_end_server,
):
    url, accepted = late_end_server
    target = Target(kind="openai", base_url=url, api_key="sk-test", name="late end")

    for _ in range(3):
        events = [e async for e in adapter_for("openai").stream(target, chat("hi"))]
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["hi"]
        assert events[-1] == Finish("stop")

    assert len(accepted) == 1


async def test_a_stream_stopped_early_does_not_leave_its_connection_to_the_next_call(
    fake_upstream,
):
    target = target_for(fake_upstream, "openai")
    events = adapter_for("openai").stream(target, chat("@tokens=200 @delay=0.05"))
    await anext(events)
    await events.aclose()

    [e async for e in adapter_for("openai").stream(target, chat("@tokens=3"))]

    first, second = fake_upstream.requests
    assert second["completed"]
    # The upstream (a server on a thread of this process, its own event loop) hears of the
    # close in its own time: on a busy machine after the second call has ended.
    assert await fake_upstream.until(lambda: first["disconnected"], timeout=3)
    assert first["client"] != second["client"]
