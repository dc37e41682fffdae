"""The offline demo model: a deterministic reply streamed at a human-like pace, no network.

It lets a fresh install be tried before any key is configured. Its usage is counted (words of
the prompt and of the reply) so budgets and the usage ledger behave as with a real provider.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from django.conf import settings

from providers.types import ChatRequest, Finish, ModelInfo, StreamEvent, Target, TextDelta, Usage

from .base import Adapter

DEMO_MODEL = "aurax-demo"
OPENINGS = (
    "This is the offline demo model of AURAX, answering without any network access.",
    "Hello from the AURAX offline demo: no provider is configured yet, so I reply locally.",
    "You are talking to the built-in demo model, which runs entirely on this server.",
)
BODY = (
    "Add an API key under API keys & providers to chat with a real model. "
    "Until then, every message gets a short, predictable answer like this one, "
    "which is handy for trying the interface, streaming and usage accounting."
)


def demo_reply(request: ChatRequest) -> str:
    last = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    digest = hashlib.sha256(last.encode()).digest()
    opening = OPENINGS[digest[0] % len(OPENINGS)]
    quoted = (last[:80] + "…") if len(last) > 80 else last
    echo = f' You wrote: "{quoted}".' if quoted else ""
    return f"{opening}{echo} {BODY}"


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


class DemoAdapter(Adapter):
    """Its reply is a function of the last user message alone, with no randomness: the
    sampling hints (seed, penalties, top_k…) would change nothing, and are ignored."""

    kind = "demo"
    label = "Offline demo"
    needs_api_key = False
    needs_network = False

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        words = _words(demo_reply(request))
        if request.max_tokens is not None:
            words = words[: request.max_tokens]
        delay = settings.PROVIDER_DEMO_TOKEN_DELAY
        for word in words:
            if delay:
                await asyncio.sleep(delay)
            yield TextDelta(word)
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        yield Usage(input_tokens=prompt_words, output_tokens=len(words))
        full = request.max_tokens is not None and len(words) == request.max_tokens
        yield Finish("length" if full else "stop")

    async def list_models(self, target: Target) -> list[ModelInfo]:
        return [ModelInfo(id=DEMO_MODEL, display_name="Offline demo", context_window=8192)]
