"""A temperature the chosen provider cannot take is refused before any upstream call (never
clamped), and an alias falls back to a provider that can take it."""

import pytest
from asgiref.sync import sync_to_async

from gateway import pipeline
from gateway.errors import GatewayError
from providers.types import Message, TextDelta
from tests.gateway.conftest import alias_create, model_for, usage_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


def ask(caller, model, temperature, text="@tokens=3"):
    return pipeline.stream(
        **caller,
        model=model,
        messages=[Message("user", text)],
        temperature=temperature,
        source="api",
    )


async def test_a_temperature_above_anthropics_range_is_refused_before_any_call(
    caller, anthropic_credential, fake_upstream
):
    s = ask(caller, model_for(anthropic_credential), 1.5)

    with pytest.raises(GatewayError) as refused:
        [e async for e in s]

    error = refused.value
    assert (error.code, error.status, error.param) == (
        "temperature_unsupported",
        400,
        "temperature",
    )
    assert error.message == (
        "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."
    )
    assert fake_upstream.requests == []
    assert await usage_events() == []  # nothing billed, nothing reserved to settle


async def test_the_edge_of_the_range_is_sent_as_asked(caller, anthropic_credential, fake_upstream):
    s = ask(caller, model_for(anthropic_credential), 1.0)
    text = "".join([e.text async for e in s if isinstance(e, TextDelta)])

    assert text == "tok1 tok2 tok3"
    [request] = fake_upstream.requests
    assert request["path"] == "/v1/messages" and request["json"]["temperature"] == 1.0


async def test_an_alias_skips_a_provider_that_cannot_take_the_temperature(
    caller, anthropic_credential, credential, fake_upstream
):
    await alias_create("creative", (anthropic_credential, "fake-small"), (credential, "fake-large"))

    s = ask(caller, "creative", 1.5)
    text = "".join([e.text async for e in s if isinstance(e, TextDelta)])

    assert text == "tok1 tok2 tok3"
    [request] = fake_upstream.requests
    assert request["path"] == "/v1/chat/completions" and request["json"]["temperature"] == 1.5
    [event] = await usage_events()
    assert (event.provider_kind, event.model, event.status) == ("openai", "fake-large", "ok")

    # Within its range, the alias's first target serves as before.
    fake_upstream.reset()
    [e async for e in ask(caller, "creative", 0.7)]
    assert [r["path"] for r in fake_upstream.requests] == ["/v1/messages"]


async def test_an_alias_none_of_whose_providers_can_take_it_names_the_range(
    caller, anthropic_credential, fake_upstream
):
    await alias_create("careful", (anthropic_credential, "fake-small"))

    with pytest.raises(GatewayError) as refused:
        [e async for e in ask(caller, "careful", 2)]

    assert refused.value.code == "temperature_unsupported"
    assert refused.value.message == "The model “careful” accepts a temperature from 0 to 1, not 2."
    assert fake_upstream.requests == [] and await usage_events() == []


async def test_a_provider_that_takes_any_temperature_is_not_limited(caller):
    from providers.services import demo_credential_sync

    await sync_to_async(demo_credential_sync)()
    s = ask(caller, "aurax-demo", 2.0, text="hello")
    assert "".join([e.text async for e in s if isinstance(e, TextDelta)])
