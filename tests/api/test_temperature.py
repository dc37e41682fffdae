"""/v1 refuses a temperature no provider of the model accepts with a 400 naming the range, in
the endpoint's own error shape, before any upstream call and with nothing billed."""

import pytest

from tests.api.test_chat_completions import post, usage_rows
from tests.gateway.conftest import alias_create, model_for

pytestmark = pytest.mark.django_db(transaction=True)


def body(model, temperature, **extra):
    return {
        "model": model,
        "messages": [{"role": "user", "content": '@reply="warm"'}],
        "temperature": temperature,
        **extra,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_a_temperature_anthropic_cannot_take_is_a_400_on_the_temperature(
    auth, anthropic_credential, fake_upstream, stream
):
    model = model_for(anthropic_credential)
    response = await post("/v1/chat/completions", body(model, 1.5, stream=stream), auth)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "temperature" and error["code"] == "temperature_unsupported"
    assert error["message"] == (
        "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."
    )
    assert fake_upstream.posted() == []
    assert await usage_rows() == []


async def test_within_its_range_the_temperature_reaches_anthropic_unchanged(
    auth, anthropic_credential, fake_upstream
):
    response = await post("/v1/chat/completions", body(model_for(anthropic_credential), 1), auth)

    assert response.status_code == 200, response.content
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/messages" and sent["json"]["temperature"] == 1


async def test_an_alias_is_served_by_a_provider_that_takes_the_temperature(
    auth, anthropic_credential, credential, fake_upstream
):
    await alias_create("creative", (anthropic_credential, "fake-small"), (credential, "fake-large"))

    response = await post("/v1/chat/completions", body("creative", 1.8), auth)

    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"] == "warm"
    [sent] = fake_upstream.posted()
    assert sent["path"] == "/v1/chat/completions" and sent["json"]["temperature"] == 1.8
    [row] = await usage_rows()
    assert row.provider_kind == "openai" and row.status == "ok"


async def test_messages_says_it_in_anthropics_shape(
    auth, anthropic_credential, fake_upstream, monkeypatch
):
    # /v1/messages takes 0 to 1, which every provider here accepts: narrow one to see the
    # refusal in this endpoint's shape.
    from providers.adapters import adapter_for

    monkeypatch.setattr(adapter_for("anthropic"), "temperature_range", (0.0, 0.5))
    payload = {**body(model_for(anthropic_credential), 0.9), "max_tokens": 20}

    response = await post("/v1/messages", payload, auth)

    assert response.status_code == 400, response.content
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "The model “fake-small (Claude)” accepts a temperature from 0 to 0.5, "
            "not 0.9.",
        },
    }
    assert fake_upstream.posted() == []
    assert await usage_rows() == []
