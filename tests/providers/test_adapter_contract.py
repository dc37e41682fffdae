"""Every adapter against the fake upstream over real HTTP: the same normalized events out."""

import pytest

from providers.adapters import REGISTRY, adapter_for
from providers.types import ChatRequest, Finish, ImagePart, Message, Target, TextDelta, Usage

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")

PROTOCOL_KINDS = ["openai", "anthropic", "gemini", "ollama"]
PNG = "data:image/png;base64,iVBORw0KGgo="


async def collect(kind, fake_upstream, request):
    adapter = adapter_for(kind)
    return [e async for e in adapter.stream(target_for(fake_upstream, kind), request)]


@pytest.mark.parametrize("kind", PROTOCOL_KINDS + ["mistral", "openai_compatible"])
async def test_it_streams_text_then_usage_then_finish(kind, fake_upstream):
    events = await collect(kind, fake_upstream, chat("hi @tokens=4"))

    # Chunks that arrive together may leave as one delta; the text is whole and in order.
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "tok1 tok2 tok3 tok4"
    assert all(isinstance(e, TextDelta) for e in events[:-2])
    assert isinstance(events[-2], Usage) and events[-2].output_tokens == 4
    assert events[-2].input_tokens > 0
    assert events[-1] == Finish("stop")


@pytest.mark.parametrize("kind", PROTOCOL_KINDS)
async def test_it_completes_without_streaming(kind, fake_upstream):
    completion = await adapter_for(kind).complete(
        target_for(fake_upstream, kind), chat('@reply="Bonjour tout le monde"')
    )

    assert completion.text == "Bonjour tout le monde"
    assert completion.finish_reason == "stop"
    assert completion.usage.output_tokens == 4
    body = fake_upstream.requests[-1]["json"]
    assert body.get("stream") in (False, None)


@pytest.mark.parametrize("kind", PROTOCOL_KINDS)
async def test_it_lists_the_providers_models(kind, fake_upstream):
    models = await adapter_for(kind).list_models(target_for(fake_upstream, kind))

    assert [m.id for m in models] == ["fake-small", "fake-large", "gpt-4o-mini"]


@pytest.mark.parametrize("kind", ["openai", "gemini", "ollama"])
async def test_it_embeds_inputs_in_order(kind, fake_upstream):
    vectors, tokens = await adapter_for(kind).embed(
        target_for(fake_upstream, kind), "fake-embed", ["one two three", "four"]
    )

    assert [v[1] for v in vectors] == [3.0, 1.0]
    assert tokens > 0


@pytest.mark.parametrize("kind", PROTOCOL_KINDS)
async def test_it_reports_no_usage_when_the_provider_gives_none(kind, fake_upstream):
    events = await collect(kind, fake_upstream, chat("@tokens=2 @no_usage"))

    assert not any(isinstance(e, Usage) for e in events)
    assert events[-1] == Finish("stop")


async def test_openai_asks_for_usage_in_the_stream_and_sends_a_bearer_key(fake_upstream):
    await collect("openai", fake_upstream, chat("hi", system="Be brief", max_tokens=5))

    request = fake_upstream.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["json"]["stream_options"] == {"include_usage": True}
    assert request["json"]["messages"][0] == {"role": "system", "content": "Be brief"}
    assert request["json"]["max_tokens"] == 5
    assert request["headers"]["authorization"] == "Bearer sk-test-key-1234"


async def test_anthropic_puts_the_system_prompt_on_top_with_its_headers(fake_upstream):
    await collect("anthropic", fake_upstream, chat("hi", system="Be brief"))

    request = fake_upstream.requests[-1]
    assert request["path"] == "/v1/messages"
    assert request["json"]["system"] == "Be brief"
    assert [m["role"] for m in request["json"]["messages"]] == ["user"]
    assert request["json"]["max_tokens"] > 0
    assert request["headers"]["x-api-key"] == "sk-test-key-1234"
    assert request["headers"]["anthropic-version"] == "2023-06-01"


async def test_gemini_uses_system_instruction_model_role_and_header_key(fake_upstream):
    request = ChatRequest(
        model="fake-small",
        messages=(
            Message("system", "Be brief"),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("user", "again"),
        ),
    )
    await collect("gemini", fake_upstream, request)

    sent = fake_upstream.requests[-1]
    assert sent["path"] == "/v1beta/models/fake-small:streamGenerateContent"
    assert sent["query"] == {"alt": ["sse"]}
    assert sent["json"]["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert [c["role"] for c in sent["json"]["contents"]] == ["user", "model", "user"]
    assert sent["headers"]["x-goog-api-key"] == "sk-test-key-1234"
    assert "key" not in sent["query"]


async def test_ollama_streams_ndjson_from_api_chat(fake_upstream):
    await collect("ollama", fake_upstream, chat("hi", temperature=0.2))

    sent = fake_upstream.requests[-1]
    assert sent["path"] == "/api/chat"
    assert sent["json"]["stream"] is True
    assert sent["json"]["options"] == {"temperature": 0.2}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("openai", {"type": "image_url", "image_url": {"url": PNG}}),
        (
            "anthropic",
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
            },
        ),
        ("gemini", {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}),
    ],
)
async def test_images_are_sent_in_each_protocols_format(kind, expected, fake_upstream):
    request = ChatRequest(
        model="fake-small", messages=(Message("user", "what is this?", images=(ImagePart(PNG),)),)
    )
    await collect(kind, fake_upstream, request)

    body = fake_upstream.requests[-1]["json"]
    parts = body["contents"][0]["parts"] if kind == "gemini" else body["messages"][0]["content"]
    assert expected in parts


async def test_ollama_gets_images_as_bare_base64(fake_upstream):
    request = ChatRequest(
        model="fake-small", messages=(Message("user", "what is this?", images=(ImagePart(PNG),)),)
    )
    await collect("ollama", fake_upstream, request)

    assert fake_upstream.requests[-1]["json"]["messages"][0]["images"] == ["iVBORw0KGgo="]


def test_every_openai_compatible_kind_is_registered_with_its_base_url():
    expected = {
        "openai": "https://api.openai.com/v1",
        "mistral": "https://api.mistral.ai/v1",
        "groq": "https://api.groq.com/openai/v1",
        "together": "https://api.together.xyz/v1",
        "xai": "https://api.x.ai/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "deepseek": "https://api.deepseek.com/v1",
        "github": "https://models.github.ai/inference",
        "openai_compatible": "",
    }
    for kind, base_url in expected.items():
        assert REGISTRY[kind].default_base_url == base_url
    assert REGISTRY["demo"].label == "Offline demo"


async def test_the_demo_model_streams_a_deterministic_reply_without_network(settings):
    settings.PROVIDER_DEMO_TOKEN_DELAY = 0.001
    adapter = adapter_for("demo")
    target = Target(kind="demo", base_url="")

    first = [e async for e in adapter.stream(target, chat("hello there"))]
    second = [e async for e in adapter.stream(target, chat("hello there"))]

    assert first == second
    texts = [e for e in first if isinstance(e, TextDelta)]
    assert len(texts) > 10
    usage = next(e for e in first if isinstance(e, Usage))
    assert usage.output_tokens == len(texts) and usage.input_tokens == 2
    assert first[-1] == Finish("stop")
