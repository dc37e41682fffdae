"""/v1 passes the sampling hints to the provider that serves the call, in that provider's own
fields (what the fake upstream receives over HTTP), instead of ignoring them; out-of-range
values are refused naming the field, before any upstream call."""

import pytest

from tests.api.test_chat_completions import body, post, usage_rows
from tests.fixtures.sampling import OPENAI_HINTS
from tests.gateway.conftest import model_for

pytestmark = pytest.mark.django_db(transaction=True)


def messages_body(model="fake-small", **extra):
    return {
        "model": model,
        "max_tokens": 20,
        "messages": [{"role": "user", "content": '@reply="fine"'}],
        **extra,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_chat_completions_hints_reach_an_openai_provider(auth, fake_upstream, stream):
    payload = body('@reply="fine"', stream=stream, top_k=7, **OPENAI_HINTS)
    response = await post("/v1/chat/completions", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/chat/completions"
    assert {name: sent["json"].get(name) for name in OPENAI_HINTS} == OPENAI_HINTS
    assert "top_k" not in sent["json"]  # not part of OpenAI's API


async def test_chat_completions_hints_reach_anthropic_in_its_fields(
    auth, anthropic_credential, fake_upstream
):
    payload = {**body('@reply="fine"', top_k=7, **OPENAI_HINTS)}
    payload["model"] = model_for(anthropic_credential)
    response = await post("/v1/chat/completions", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["top_k"] == 7
    assert sent["json"]["metadata"] == {"user_id": "end-user-9"}
    assert not {"seed", "frequency_penalty", "presence_penalty", "logit_bias"} & set(sent["json"])


async def test_messages_top_k_and_user_id_reach_anthropic(
    auth, anthropic_credential, fake_upstream
):
    payload = messages_body(
        model_for(anthropic_credential), top_k=5, metadata={"user_id": "end-user-3"}
    )
    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/messages"
    assert (sent["json"]["top_k"], sent["json"]["metadata"]) == (5, {"user_id": "end-user-3"})


async def test_messages_user_id_reaches_an_openai_provider_as_user(auth, fake_upstream):
    payload = messages_body(top_k=5, metadata={"user_id": "end-user-3"})
    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/chat/completions" and sent["json"]["user"] == "end-user-3"
    assert "top_k" not in sent["json"] and "metadata" not in sent["json"]


async def test_without_hints_nothing_extra_reaches_the_provider(auth, fake_upstream):
    response = await post("/v1/chat/completions", body('@reply="fine"'), auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert set(sent["json"]) == {"model", "messages", "stream"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"logit_bias": {"50256": 101}}, "logit_bias.50256"),
        ({"seed": "forty-two"}, "seed"),
        ({"top_k": -1}, "top_k"),
        ({"user": 7}, "user"),
    ],
)
async def test_a_hint_out_of_range_is_refused_naming_it(auth, fake_upstream, extra, param):
    response = await post("/v1/chat/completions", body(**extra), auth)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["param"] == param
    assert fake_upstream.posted() == [] and await usage_rows() == []


async def test_messages_refuses_a_metadata_user_id_of_the_wrong_type(auth, fake_upstream):
    response = await post("/v1/messages", messages_body(metadata={"user_id": 7}), auth)

    assert response.status_code == 400, response.content
    assert "metadata.user_id" in response.json()["error"]["message"]
    assert fake_upstream.posted() == []


async def test_the_openapi_document_says_where_the_hints_go(credential):
    from tests.api.client import AsyncClient

    spec = (await AsyncClient().get("/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]["properties"]
    for name in ("seed", "frequency_penalty", "presence_penalty", "logit_bias", "user", "top_k"):
        assert "Sampling hints" in chat[name]["description"], name
    assert chat["presence_penalty"]["anyOf"][0] == {
        "type": "number",
        "minimum": -2.0,
        "maximum": 2.0,
    }
    messages = schemas["AnthropicMessagesRequest"]["properties"]
    assert "Sampling hints" in messages["top_k"]["description"]
    assert "user_id" in schemas["AnthropicMetadata"]["properties"]
