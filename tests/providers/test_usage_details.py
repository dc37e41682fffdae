"""The parts of a call's token totals each provider reports: prompt tokens read from (or
written to) its prompt cache, and output tokens spent reasoning. Read over real HTTP from the
fake upstream, which reports them in each provider's own words."""

import pytest

from providers.adapters import adapter_for
from providers.adapters.anthropic import usage_read as anthropic_usage
from providers.adapters.openai_compat import usage_read as openai_usage
from providers.types import Usage

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")

KINDS = ["openai", "anthropic", "gemini", "ollama"]
# Who reports reasoning apart: Anthropic and Ollama count it in the output only.
REPORTS_REASONING = {"openai": True, "anthropic": False, "gemini": True, "ollama": False}
# Who reports cache reads: Ollama has no prompt cache to report.
REPORTS_CACHE = {"openai": True, "anthropic": True, "gemini": True, "ollama": False}


async def usage_of(kind, fake_upstream, text, *, streamed):
    adapter, target, request = adapter_for(kind), target_for(fake_upstream, kind), chat(text)
    if not streamed:
        return (await adapter.complete(target, request)).usage
    events = [e async for e in adapter.stream(target, request)]
    (usage,) = [e for e in events if isinstance(e, Usage)]
    return usage


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("kind", KINDS)
async def test_cached_and_reasoning_tokens_are_read_as_parts_of_the_totals(
    kind, streamed, fake_upstream
):
    # The same number of words: the fake counts the prompt's words.
    plain = await usage_of(
        kind, fake_upstream, "@tokens=3 @cached=0 @reasoning=0", streamed=streamed
    )
    usage = await usage_of(
        kind, fake_upstream, "@tokens=3 @cached=40 @reasoning=5", streamed=streamed
    )

    # The totals count every token, whichever way the provider reports them.
    assert usage.input_tokens == plain.input_tokens + 40
    assert usage.output_tokens == 3 + 5
    assert (plain.cache_read_tokens, plain.reasoning_tokens) == (0, 0)
    assert usage.cache_read_tokens == (40 if REPORTS_CACHE[kind] else 0)
    assert usage.reasoning_tokens == (5 if REPORTS_REASONING[kind] else 0)
    assert usage.cache_write_tokens == 0


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
async def test_anthropic_cache_writes_count_in_the_input(streamed, fake_upstream):
    plain = await usage_of(
        "anthropic", fake_upstream, "@tokens=2 @cache_write=0 @cached=0", streamed=streamed
    )
    usage = await usage_of(
        "anthropic", fake_upstream, "@tokens=2 @cache_write=30 @cached=7", streamed=streamed
    )

    assert usage.input_tokens == plain.input_tokens + 30 + 7
    assert (usage.cache_write_tokens, usage.cache_read_tokens) == (30, 7)
    assert usage.cache_write_1h_tokens == 0

    hour = await usage_of(
        "anthropic", fake_upstream, "@tokens=2 @cache_write=5 @cache_write_1h=25", streamed=streamed
    )
    assert (hour.cache_write_tokens, hour.cache_write_1h_tokens) == (30, 25)


def test_openai_compatible_dialects_and_odd_reports():
    # DeepSeek names its cache hits apart.
    deepseek = openai_usage(
        {"prompt_tokens": 100, "completion_tokens": 9, "prompt_cache_hit_tokens": 64}
    )
    assert (deepseek.input_tokens, deepseek.cache_read_tokens) == (100, 64)
    # Details that are null, not numbers, or more than the total they are part of.
    odd = openai_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "prompt_tokens_details": None,
            "completion_tokens_details": {"reasoning_tokens": "many"},
        }
    )
    assert odd == Usage(10, 4)
    capped = openai_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": 9},
        }
    )
    assert (capped.cache_read_tokens, capped.reasoning_tokens) == (10, 4)


def test_anthropic_message_delta_totals_replace_the_start():
    # A message_delta may carry the running totals, cache counts included (null when unknown).
    usage = anthropic_usage(
        {
            "input_tokens": 12,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": None,
            "output_tokens": 80,
        }
    )
    assert usage == Usage(2012, 80, cache_read_tokens=2000)
