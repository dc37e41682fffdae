"""How streamed bodies are read: what arrived together leaves together, what arrives apart
leaves apart, and a body the fast path cannot read (content coding) is still read whole."""

import asyncio
import gzip
import json

import httpx
import pytest

from providers.adapters import adapter_for
from providers.types import Finish, ProviderOverloaded, Target, TextDelta, Usage

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")


async def events_of(kind, target, request):
    return [e async for e in adapter_for(kind).stream(target, request)]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "ollama"])
async def test_tokens_arriving_apart_leave_as_separate_deltas(kind, fake_upstream):
    events = await events_of(kind, target_for(fake_upstream, kind), chat("@tokens=3 @delay=0.05"))

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["tok1 ", "tok2 ", "tok3"]


async def test_text_read_together_with_an_error_event_reaches_the_consumer_first(fake_upstream):
    received = []
    with pytest.raises(ProviderOverloaded):
        async for event in adapter_for("openai").stream(
            target_for(fake_upstream, "openai"),
            chat("@tokens=5 @stream_error=overloaded @error_after=3"),
        ):
            received.append(event)

    assert "".join(e.text for e in received) == "tok1 tok2 tok3 "


def _sse(*payloads) -> bytes:
    return b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)


@pytest.fixture
async def gzip_sse_server():
    """An upstream answering every request with a gzip-encoded SSE body."""
    chunks = [
        json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})
        for text in ("Grüße ", "aus ", "gzip")
    ]
    usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}})
    body = gzip.compress(_sse(*chunks, usage, "[DONE]"))

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    server.close()
    await server.wait_closed()


async def test_a_content_coded_body_is_decoded(gzip_sse_server):
    target = Target(kind="openai", base_url=gzip_sse_server, api_key="sk-test", name="gz")

    events = await events_of("openai", target, chat("hi"))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Grüße aus gzip"
    assert events[-2] == Usage(input_tokens=3, output_tokens=3)
    assert events[-1] == Finish("stop")


async def test_a_plain_body_is_read_straight_from_the_transport(fake_upstream, monkeypatch):
    def layered(self, *args, **kwargs):
        raise AssertionError("read through httpx's generator layers")

    monkeypatch.setattr(httpx.Response, "aiter_bytes", layered)

    events = await events_of("openai", target_for(fake_upstream, "openai"), chat("@tokens=3"))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "tok1 tok2 tok3"
