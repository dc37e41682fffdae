"""The pipeline carries the sampling hints from its caller to whichever adapter serves the
call, unchanged: the fake upstream receives them in that provider's own fields, a fallback
included. A caller that gives none (the chat) sends nothing extra."""

import pytest

from gateway import pipeline
from providers.types import Message, TextDelta
from tests.fixtures.sampling import HINTS
from tests.gateway.conftest import alias_create, model_for, usage_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


async def answer(caller, model, text='@reply="fine"', **kwargs) -> str:
    s = pipeline.stream(
        **caller, model=model, messages=[Message("user", text)], source="api", **kwargs
    )
    return "".join([e.text async for e in s if isinstance(e, TextDelta)])


@pytest.mark.parametrize("whole", [False, True], ids=["stream", "whole"])
async def test_the_hints_reach_the_openai_adapter_unchanged(
    caller, credential, fake_upstream, whole
):
    assert await answer(caller, model_for(credential), whole=whole, **HINTS) == "fine"

    [request] = fake_upstream.posted()
    body = request["json"]
    assert body["stream"] is not whole
    assert {k: body.get(k) for k in ("seed", "frequency_penalty", "presence_penalty")} == {
        "seed": 42,
        "frequency_penalty": 0.25,
        "presence_penalty": 0.5,
    }
    assert body["logit_bias"] == {"50256": -100} and body["reasoning_effort"] == "low"
    assert body["user"] == "end-user-9"
    assert "top_k" not in body  # not part of OpenAI's API


async def test_the_hints_reach_the_anthropic_adapter_in_its_fields(
    caller, anthropic_credential, fake_upstream
):
    assert await answer(caller, model_for(anthropic_credential), **HINTS) == "fine"

    [request] = fake_upstream.posted()
    body = request["json"]
    assert body["top_k"] == 7 and body["metadata"] == {"user_id": "end-user-9"}
    assert not {"seed", "frequency_penalty", "presence_penalty", "logit_bias"} & body.keys()


async def test_a_fallback_gets_them_in_its_own_fields(
    caller, anthropic_credential, credential, fake_upstream
):
    await alias_create("steady", (anthropic_credential, "fake-large"), (credential, "fake-small"))

    text = await answer(
        caller, "steady", '@reply="fine" @status=503 @only_model=fake-large', **HINTS
    )

    assert text == "fine"
    anthropic, openai = fake_upstream.posted()[0], fake_upstream.posted()[-1]
    assert anthropic["path"] == "/v1/messages" and anthropic["json"]["top_k"] == 7
    assert openai["path"] == "/v1/chat/completions"
    assert (openai["json"]["seed"], openai["json"]["user"]) == (42, "end-user-9")
    [event] = await usage_events()
    assert (event.provider_kind, event.status) == ("openai", "ok")


async def test_a_caller_without_hints_sends_nothing_extra(caller, credential, fake_upstream):
    assert await answer(caller, model_for(credential)) == "fine"

    [request] = fake_upstream.posted()
    assert set(request["json"]) == {"model", "messages", "stream", "stream_options"}
