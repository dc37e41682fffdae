"""A conversation's settings are saved as given or refused with the reason, never clamped: a
temperature outside 0–2, or that the conversation's model cannot take, or that is not a number,
and a max tokens outside 1–1,000,000, leave the saved values as they were. A model chosen that
cannot take the temperature already saved is saved, and the temperature kept: the page says so,
and the answer is refused with `temperature_unsupported` until one of them changes."""

import json
import math

import pytest

from chat import actions, services
from chat.models import Conversation
from tests.chat.helpers import conversation_with
from tests.factories import UserFactory
from tests.gateway.conftest import model_for
from workspaces.selectors import personal_workspace_get

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user():
    return UserFactory()


def _saved(conversation) -> tuple:
    conversation.refresh_from_db()
    return conversation.model, conversation.temperature, conversation.max_tokens


@pytest.mark.parametrize(
    "value", [2.5, -0.1, 7, "2.01", "warm", "", True, math.nan, math.inf, "nan", [1], {"t": 1}]
)
def test_a_temperature_out_of_0_to_2_or_not_a_number_is_refused_and_nothing_saved(user, value):
    conversation = conversation_with(user, model="m", temperature=0.7, max_tokens=100)
    if value == "":  # empty: no temperature (the model's own); not a refusal
        services.conversation_settings_update(conversation=conversation, temperature=value)
        assert _saved(conversation) == ("m", None, 100)
        return

    with pytest.raises(services.SettingsRefused) as refused:
        services.conversation_settings_update(
            conversation=conversation, model="other", temperature=value, max_tokens=200
        )

    assert (refused.value.param, refused.value.code) == ("temperature", "invalid")
    assert str(refused.value) == "The temperature must be a number from 0 to 2."
    assert _saved(conversation) == ("m", 0.7, 100)  # nothing of the save, nothing clamped


@pytest.mark.parametrize("value", [0, 1_000_001, 2.5, "many", True, -3])
def test_a_max_tokens_out_of_range_or_not_whole_is_refused_and_nothing_saved(user, value):
    conversation = conversation_with(user, model="m", temperature=0.7, max_tokens=100)

    with pytest.raises(services.SettingsRefused) as refused:
        services.conversation_settings_update(conversation=conversation, max_tokens=value)

    assert (refused.value.param, refused.value.code) == ("max_tokens", "invalid")
    assert str(refused.value) == "Max tokens must be a whole number from 1 to 1,000,000."
    assert _saved(conversation) == ("m", 0.7, 100)


def test_values_in_range_are_saved_as_given(user):
    conversation = conversation_with(user, model="m")
    services.conversation_settings_update(
        conversation=conversation, temperature="1.95", max_tokens="1000000"
    )
    assert _saved(conversation) == ("m", 1.95, 1_000_000)
    services.conversation_settings_update(conversation=conversation, temperature=0, max_tokens=1)
    assert _saved(conversation) == ("m", 0.0, 1)


def test_a_temperature_the_conversation_s_model_cannot_take_is_refused(
    user, anthropic_credential, credential
):
    claude, fake = model_for(anthropic_credential), model_for(credential)
    conversation = conversation_with(user, model=claude, temperature=0.7)

    with pytest.raises(services.SettingsRefused) as refused:
        services.conversation_settings_update(conversation=conversation, temperature=1.5)
    assert (refused.value.param, refused.value.code) == ("temperature", "temperature_unsupported")
    assert str(refused.value) == (
        "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."
    )
    assert _saved(conversation) == (claude, 0.7, None)

    # Judged against the model saved with it: the same value with a model that takes it.
    services.conversation_settings_update(conversation=conversation, model=fake, temperature=1.5)
    assert _saved(conversation) == (fake, 1.5, None)


def test_a_model_that_cannot_take_the_saved_temperature_is_saved_and_the_temperature_kept(
    user, anthropic_credential, credential
):
    claude = model_for(anthropic_credential)
    conversation = conversation_with(user, model=model_for(credential), temperature=1.5)

    # As the page saves it: every setting, the temperature unchanged.
    services.conversation_settings_update(conversation=conversation, model=claude, temperature=1.5)

    assert _saved(conversation) == (claude, 1.5, None)  # not changed behind the user's back


def test_a_new_conversation_with_a_temperature_its_model_cannot_take_is_not_created(
    user, anthropic_credential
):
    workspace = personal_workspace_get(user=user)
    before = Conversation.objects.count()
    for temperature, code in ((1.5, "temperature_unsupported"), (3, "invalid")):
        with pytest.raises(services.SettingsRefused) as refused:
            services.conversation_create(
                user=user,
                workspace=workspace,
                model=model_for(anthropic_credential),
                temperature=temperature,
            )
        assert refused.value.code == code
    assert Conversation.objects.count() == before


def test_a_send_frame_s_refused_setting_refuses_the_send(user, anthropic_credential):
    conversation = conversation_with(user, model=model_for(anthropic_credential), temperature=0.2)
    frame = {"conversation_id": conversation.pk, "content": "Hello", "temperature": 1.5}

    with pytest.raises(actions.ActionRefused) as refused:
        actions.send(user=user, frame=frame)

    assert (refused.value.code, refused.value.param) == ("temperature_unsupported", "temperature")
    assert _saved(conversation)[1] == 0.2
    assert not conversation.messages.exists()  # nothing sent


# --- The settings view (what the page posts when a setting changes) ----------------------


def _post(client, conversation, **data):
    return client.post(f"/c/{conversation.pk}/settings/", data)


def test_the_view_refuses_with_the_reason_in_the_reader_s_language(
    client, user, anthropic_credential
):
    user.language = "es"
    user.save(update_fields=["language"])
    client.force_login(user)
    claude = model_for(anthropic_credential)
    conversation = conversation_with(user, model=claude, temperature=0.5, system_prompt="Brief.")

    response = _post(client, conversation, model=claude, system_prompt="Long.", temperature="1.5")

    assert response.status_code == 400
    assert json.loads(response.content) == {
        "error": {
            "code": "temperature_unsupported",
            "param": "temperature",
            "message": "El modelo “fake-small (Claude)” acepta una temperatura de 0 a 1, no 1,5.",
        }
    }
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.system_prompt) == (0.5, "Brief.")

    response = _post(client, conversation, temperature="9")
    assert json.loads(response.content)["error"] == {
        "code": "invalid",
        "param": "temperature",
        "message": "La temperatura debe ser un número de 0 a 2.",
    }
    response = _post(client, conversation, max_tokens="0")
    assert json.loads(response.content)["error"]["message"] == (
        "El máximo de tokens debe ser un número entero de 1 a 1\xa0000\xa0000."
    )
    assert _saved(conversation) == (claude, 0.5, None)


def test_the_view_leaves_a_setting_not_posted_as_it_is(client, user, credential):
    client.force_login(user)
    fake = model_for(credential)
    conversation = conversation_with(user, model=fake, temperature=1.5, max_tokens=64)

    # The page leaves out a temperature it shows invalid.
    response = _post(client, conversation, model=fake, system_prompt="Brief.", max_tokens="")

    assert response.status_code == 204
    assert _saved(conversation) == (fake, 1.5, None)
