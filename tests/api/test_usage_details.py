"""The parts of a call's tokens the provider reported (prompt tokens read from or written to
its prompt cache, output tokens spent reasoning) reach the ledger, price the call, and are
reported by each /v1 endpoint the way its vendor's API reports them."""

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from billing.models import ModelPriceOverride
from tests.api.test_chat_completions import body, post, sse_events, usage_rows
from tests.gateway.conftest import model_for

pytestmark = pytest.mark.django_db(transaction=True)

CACHED = '@reply="one two three" @cached=400 @reasoning=5'


@sync_to_async
def priced(kind: str, model: str) -> None:
    """$10 per million plain input tokens, $1 read from the cache, $20 written ($40 to be kept
    an hour), $30 out."""
    ModelPriceOverride.objects.create(
        provider_kind=kind,
        model=model,
        input_per_mtok=Decimal(10),
        output_per_mtok=Decimal(30),
        cache_read_per_mtok=Decimal(1),
        cache_write_per_mtok=Decimal(20),
        cache_write_1h_per_mtok=Decimal(40),
    )


def cost_of(row) -> Decimal:
    plain = row.input_tokens - row.cache_read_tokens - row.cache_write_tokens
    amount = (
        plain * 10
        + row.cache_read_tokens * 1
        + (row.cache_write_tokens - row.cache_write_1h_tokens) * 20
        + row.cache_write_1h_tokens * 40
        + row.output_tokens * 30
    )
    return (Decimal(amount) / 10**6).quantize(Decimal("0.000001"))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_chat_completions_report_cached_and_reasoning_tokens_and_bill_them(auth, stream):
    await priced("openai", "fake-small")
    payload = body(
        CACHED, stream=stream, stream_options={"include_usage": True} if stream else None
    )
    if not stream:
        del payload["stream_options"]
    response = await post("/v1/chat/completions", payload, auth)
    assert response.status_code == 200, response.content
    if stream:
        content = b"".join([chunk async for chunk in response.streaming_content])
        usage = json.loads(sse_events(content)[-2])["usage"]
    else:
        usage = response.json()["usage"]

    [row] = await usage_rows()
    assert (row.cache_read_tokens, row.cache_write_tokens, row.reasoning_tokens) == (400, 0, 5)
    assert row.input_tokens > 400 and row.output_tokens == 3 + 5
    assert usage["prompt_tokens"] == row.input_tokens
    assert usage["completion_tokens"] == row.output_tokens
    assert usage["prompt_tokens_details"] == {"cached_tokens": 400}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 5}
    # The 400 cached tokens cost $1 per million, not $10.
    assert row.cost == cost_of(row)
    assert row.cost < (Decimal(row.input_tokens * 10 + row.output_tokens * 30) / 10**6)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_messages_report_the_cache_as_anthropic_does(auth, anthropic_credential, stream):
    await priced("anthropic", "fake-small")
    payload = {
        "model": model_for(anthropic_credential),
        "max_tokens": 50,
        "stream": stream,
        "messages": [
            {
                "role": "user",
                "content": '@reply="ok" @cached=300 @cache_write=20 @cache_write_1h=100',
            }
        ],
    }
    response = await post("/v1/messages", payload, auth)
    assert response.status_code == 200, response.content
    if stream:
        content = b"".join([chunk async for chunk in response.streaming_content])
        [delta] = [
            json.loads(line)
            for line in sse_events(content)
            if json.loads(line)["type"] == "message_delta"
        ]
        usage = delta["usage"]
    else:
        usage = response.json()["usage"]

    [row] = await usage_rows()
    assert (row.cache_read_tokens, row.cache_write_tokens, row.cache_write_1h_tokens) == (
        300,
        120,
        100,
    )
    # Anthropic's input_tokens leaves the cached parts out; the ledger's total has them.
    assert usage == {
        "input_tokens": row.input_tokens - 420,
        "cache_creation_input_tokens": 120,
        "cache_read_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 100},
        "output_tokens": row.output_tokens,
    }
    assert usage["input_tokens"] > 0
    assert row.cost == cost_of(row)  # the hour-long writes at the override's hour price


async def test_responses_report_cached_and_reasoning_tokens(auth):
    response = await post("/v1/responses", {"model": "fake-small", "input": CACHED}, auth)
    assert response.status_code == 200, response.content

    usage = response.json()["usage"]
    [row] = await usage_rows()
    assert usage["input_tokens"] == row.input_tokens
    assert usage["input_tokens_details"] == {"cached_tokens": 400}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 5}
    assert usage["output_tokens"] == row.output_tokens == 8


async def test_messages_cache_breakpoints_reach_anthropic(
    auth, anthropic_credential, fake_upstream
):
    long_rules = "Answer in French. " * 50
    payload = {
        "model": model_for(anthropic_credential),
        "max_tokens": 50,
        "system": [
            {"type": "text", "text": "You are terse. "},
            {"type": "text", "text": long_rules, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Here is a long document.",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ],
            },
            {"role": "assistant", "content": "Lu."},
            {"role": "user", "content": '@reply="Oui"'},
        ],
    }
    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["json"]["system"] == [
        {
            "type": "text",
            "text": "You are terse. " + long_rules,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first, reply, last = sent["json"]["messages"]
    assert first["content"] == [
        {
            "type": "text",
            "text": "Here is a long document.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]
    # Messages without a breakpoint go as they came.
    assert reply["content"] == "Lu." and last["content"] == '@reply="Oui"'


async def test_breakpoints_are_not_sent_to_providers_that_cache_by_themselves(auth, fake_upstream):
    payload = {
        "model": "fake-small",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": '@reply="ok"'}],
    }
    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/chat/completions"
    assert "cache_control" not in json.dumps(sent["json"])
    assert sent["json"]["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_a_malformed_breakpoint_is_refused_naming_it(auth, fake_upstream):
    payload = {
        "model": "fake-small",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "hi",
                        "cache_control": {"type": "ephemeral", "ttl": "2d"},
                    }
                ],
            }
        ],
    }
    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == (
        "Invalid value for 'messages.0.content.0.cache_control.ttl': Input should be '5m' or '1h'."
    )
    assert fake_upstream.posted() == []


async def test_chat_completions_content_parts_carry_breakpoints_to_anthropic(
    auth, anthropic_credential, fake_upstream
):
    """As LiteLLM takes them: `cache_control` on an OpenAI content part."""
    payload = body(
        '@reply="ok"',
        model=model_for(anthropic_credential),
        messages=[
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": '@reply="ok"'},
        ],
    )
    response = await post("/v1/chat/completions", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["json"]["system"] == [
        {"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}
    ]
    assert sent["json"]["messages"] == [{"role": "user", "content": '@reply="ok"'}]
