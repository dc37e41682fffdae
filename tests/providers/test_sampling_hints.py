"""The sampling hints (seed, penalties, top_k, logit bias, reasoning effort, end-user id)
reach each vendor in its own API's field, as the fake upstream receives them over HTTP; what a
vendor's API has no field for is not sent, and a request without hints carries nothing extra
(several vendors refuse a field they do not know, so nothing is ever sent as null)."""

import pytest

from providers.adapters import REGISTRY, adapter_for
from providers.types import Target, TextDelta
from tests.fixtures.sampling import HINTS, OPENAI_HINTS

from .conftest import chat, target_for

pytestmark = pytest.mark.usefixtures("http_client_closed_after")

PENALTIES = {"frequency_penalty": 0.25, "presence_penalty": 0.5}
# What each OpenAI-compatible kind receives of HINTS, beside the fields of every request.
OPENAI_COMPATIBLE = {
    "openai": OPENAI_HINTS,
    "xai": OPENAI_HINTS,
    "openai_compatible": OPENAI_HINTS,
    "openrouter": {**OPENAI_HINTS, "top_k": 7},
    "together": {
        "seed": 42,
        **PENALTIES,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
        "top_k": 7,
    },
    "groq": {"seed": 42, **PENALTIES, "reasoning_effort": "low", "user": "end-user-9"},
    "mistral": {"random_seed": 42, **PENALTIES},
    "deepseek": PENALTIES,
    "github": {"seed": 42, **PENALTIES},
}
OPENAI_PLAIN = {"model", "messages", "stream", "stream_options"}


def nulls(value, where="body"):
    """Where `value` holds a null, at any depth."""
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for key, inner in value.items() for n in nulls(inner, f"{where}.{key}")]
    if isinstance(value, list):
        return [n for i, inner in enumerate(value) for n in nulls(inner, f"{where}[{i}]")]
    return []


async def sent(kind, fake_upstream, *, whole=False, **hints) -> dict:
    """The body the fake upstream received for one chat call with these hints."""
    adapter = adapter_for(kind)
    target, request = target_for(fake_upstream, kind), chat('@reply="fine"', **hints)
    if whole:
        completion = await adapter.complete(target, request)
        assert completion.text == "fine"
    else:
        events = [e async for e in adapter.stream(target, request)]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "fine"
    [received] = fake_upstream.posted()
    assert not nulls(received["json"])
    return received["json"]


def test_every_openai_compatible_kind_is_covered():
    from providers.adapters.openai_compat import OpenAICompatibleAdapter

    kinds = {
        kind for kind, adapter in REGISTRY.items() if isinstance(adapter, OpenAICompatibleAdapter)
    }
    assert kinds == OPENAI_COMPATIBLE.keys()


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
@pytest.mark.parametrize("kind", OPENAI_COMPATIBLE)
async def test_openai_compatible_kinds_get_the_hints_their_api_has(kind, whole, fake_upstream):
    body = await sent(kind, fake_upstream, whole=whole, **HINTS)

    extras = {key: value for key, value in body.items() if key not in OPENAI_PLAIN}
    assert extras == OPENAI_COMPATIBLE[kind]


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
async def test_anthropic_gets_top_k_and_the_end_user_in_metadata(whole, fake_upstream):
    body = await sent("anthropic", fake_upstream, whole=whole, **HINTS)

    assert body["top_k"] == 7
    assert body["metadata"] == {"user_id": "end-user-9"}
    assert set(body) == {"model", "max_tokens", "messages", "stream", "top_k", "metadata"}


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
async def test_gemini_gets_them_in_generation_config(whole, fake_upstream):
    body = await sent("gemini", fake_upstream, whole=whole, **HINTS)

    assert body["generationConfig"] == {
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "topK": 7,
    }
    assert set(body) == {"contents", "generationConfig"}


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
async def test_ollama_gets_them_as_model_options(whole, fake_upstream):
    body = await sent("ollama", fake_upstream, whole=whole, **HINTS, temperature=0.3)

    assert body["options"] == {
        "temperature": 0.3,
        "seed": 42,
        "top_k": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    assert set(body) == {"model", "messages", "stream", "options"}


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        *((kind, OPENAI_PLAIN) for kind in OPENAI_COMPATIBLE),
        ("anthropic", {"model", "max_tokens", "messages", "stream"}),
        ("gemini", {"contents"}),
        ("ollama", {"model", "messages", "stream"}),
    ],
)
async def test_without_hints_nothing_extra_is_sent(kind, fields, fake_upstream):
    body = await sent(kind, fake_upstream)

    assert set(body) == fields


async def test_a_zero_hint_is_sent_not_dropped(fake_upstream):
    body = await sent("openai", fake_upstream, seed=0, presence_penalty=0.0)

    assert (body["seed"], body["presence_penalty"]) == (0, 0.0)


async def test_the_demo_model_has_no_randomness_for_them_to_change():
    adapter = adapter_for("demo")
    target = Target(kind="demo", base_url="")

    plain = [e async for e in adapter.stream(target, chat("hello"))]
    hinted = [e async for e in adapter.stream(target, chat("hello", **HINTS))]

    assert hinted == plain
