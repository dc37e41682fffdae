"""The chat page's temperature input in Chromium: it follows the model chosen, and a value that
model's provider cannot take holds the message back, with the reason, until it is fixed."""

import pytest
from playwright.sync_api import expect

from tests.chat.test_browser import EMAIL, log_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def server(start_aurax_server, fake_upstream):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false", PROVIDER_RETRY_ATTEMPTS="1")
    server.create_user(EMAIL, PASSWORD)
    server.shell(
        "from providers.models import CatalogModel\n"
        "from providers.services import credential_create\n"
        "from accounts.models import User\n"
        "for kind, name in (('openai', 'Fake'), ('anthropic', 'Claude')):\n"
        "    c = credential_create(actor=None, scope='global', kind=kind, name=name,\n"
        "        api_key='sk-test-key-1234', allow_private_network=True,\n"
        f"        base_url={fake_upstream.base_url('openai')!r} if kind == 'openai'\n"
        f"        else {fake_upstream.base_url('anthropic')!r})\n"
        "    CatalogModel.objects.get_or_create(credential=c, model_id='fake-small')\n"
        "    if kind == 'openai':\n"
        f"        User.objects.filter(email={EMAIL!r})"
        ".update(default_model=f'{c.id}:fake-small')\n"
    )
    return server


def calls(fake_upstream) -> list[dict]:
    return fake_upstream.posted()


def test_a_temperature_the_chosen_model_refuses_holds_the_message_back(server, page, fake_upstream):
    log_in(page, server)
    temperature = page.locator("#id_temperature")
    hint = page.locator("#temperature-hint")
    expect(hint).to_have_text("0–2 for this model")
    page.select_option("#id_model", label="fake-small (Claude)")
    expect(hint).to_have_text("0–1 for this model")
    page.click(".settings-toggle")
    temperature.fill("1.5")
    expect(page.locator("#id_temperature:invalid")).to_have_count(1)
    page.click(".settings-toggle")  # settings folded away again before sending

    page.fill("#composer-input", "hello")
    page.press("#composer-input", "Enter")

    expect(page.locator("#chat-error")).to_have_text(
        "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."
    )
    expect(page.locator("#chat-settings")).to_have_attribute("open", "")
    expect(temperature).to_have_value("1.5")  # left as typed, to be fixed by the user
    expect(page.locator("#composer-input")).to_have_value("hello")
    expect(page.locator(".msg-user")).to_have_count(0)
    assert calls(fake_upstream) == []

    page.select_option("#id_model", label="fake-small (Fake)")
    expect(hint).to_have_text("0–2 for this model")
    expect(page.locator("#id_temperature:invalid")).to_have_count(0)
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".msg-assistant[data-status=complete]")
    answer = calls(fake_upstream)[0]  # (a title may be asked for after it)
    assert answer["path"].endswith("/chat/completions")
    assert answer["json"]["temperature"] == 1.5


def saved(server) -> list:
    """The conversation's model (its credential's name) and temperature, as stored."""
    return server.shell_json(
        "import json\n"
        "from chat.models import Conversation\n"
        "from providers.models import ProviderCredential\n"
        "c = Conversation.objects.get()\n"
        "name = ProviderCredential.objects.get(pk=c.model.split(':')[0]).name\n"
        "print(json.dumps([name, c.temperature]))\n"
    )


def until_saved(page, server, expected: list) -> None:
    """Wait for the page's save (in the background) to have stored `expected`."""
    for _ in range(30):
        if saved(server) == expected:
            return
        page.wait_for_timeout(100)
    assert saved(server) == expected


def a_conversation(page, temperature: str = ""):
    """A conversation with the Fake model (the default), at `temperature`."""
    if temperature:
        page.click(".settings-toggle")
        page.fill("#id_temperature", temperature)
        page.click(".settings-toggle")
    page.fill("#composer-input", "hello")
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".msg-assistant[data-status=complete]")


CLAUDE_REFUSES = "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."


def test_a_temperature_that_cannot_be_taken_is_not_saved_and_says_why_where_typed(server, page):
    log_in(page, server)
    a_conversation(page)
    page.select_option("#id_model", label="fake-small (Claude)")
    page.click(".settings-toggle")
    temperature, error = page.locator("#id_temperature"), page.locator("#temperature-error")
    expect(error).to_be_hidden()

    temperature.fill("1.5")
    temperature.press("Tab")  # a change: the page saves its settings

    expect(error).to_have_text(CLAUDE_REFUSES)
    expect(temperature).to_have_value("1.5")  # as typed, to be fixed by the user
    until_saved(page, server, ["Claude", None])  # the model saved, the temperature not

    temperature.fill("0.5")
    temperature.press("Tab")
    expect(error).to_be_hidden()
    until_saved(page, server, ["Claude", 0.5])

    # Out of what any conversation may have: the same, with its own reason.
    page.select_option("#id_model", label="fake-small (Fake)")
    temperature.fill("3")
    temperature.press("Tab")
    expect(error).to_have_text("The temperature must be a number from 0 to 2.")
    until_saved(page, server, ["Fake", 0.5])
    page.reload()
    page.wait_for_selector("#chat[data-socket=open]")
    expect(page.locator("#id_temperature")).to_have_value("0.5")  # what was saved


def test_a_refusal_from_the_server_is_shown_where_the_temperature_was_typed(server, page):
    """A page whose menu does not know the model's range (drawn before it changed, say): the
    server refuses the temperature, and the page says why under it."""
    log_in(page, server)
    a_conversation(page)
    page.select_option("#id_model", label="fake-small (Claude)")
    page.evaluate(
        """() => {
        const option = document.querySelector("#id_model").selectedOptions[0];
        delete option.dataset.temperatureMin;
        delete option.dataset.temperatureMax;
      }"""
    )
    page.click(".settings-toggle")
    temperature = page.locator("#id_temperature")
    temperature.fill("1.5")
    temperature.press("Tab")

    expect(page.locator("#temperature-error")).to_have_text(CLAUDE_REFUSES)
    expect(page.locator("#chat-error")).to_have_text(CLAUDE_REFUSES)
    until_saved(page, server, ["Claude", None])


def test_a_model_that_cannot_take_the_saved_temperature_says_so_and_keeps_it(
    server, page, fake_upstream
):
    log_in(page, server)
    a_conversation(page, temperature="1.5")
    assert saved(server) == ["Fake", 1.5]
    settings, error = page.locator("#chat-settings"), page.locator("#temperature-error")
    expect(settings).not_to_have_attribute("open", "")

    page.select_option("#id_model", label="fake-small (Claude)")

    # Told at once, where the temperature is; nothing changed behind the user's back.
    expect(settings).to_have_attribute("open", "")
    expect(error).to_have_text(CLAUDE_REFUSES)
    expect(page.locator("#id_temperature")).to_have_value("1.5")
    until_saved(page, server, ["Claude", 1.5])

    # And again when the page is drawn anew; the send is held back until one of them changes.
    page.reload()
    page.wait_for_selector("#chat[data-socket=open]")
    expect(page.locator("#chat-settings")).to_have_attribute("open", "")
    expect(page.locator("#temperature-error")).to_have_text(CLAUDE_REFUSES)
    requests = len(calls(fake_upstream))
    page.fill("#composer-input", "again")
    page.press("#composer-input", "Enter")
    expect(page.locator("#chat-error")).to_have_text(CLAUDE_REFUSES)
    expect(page.locator(".msg-user")).to_have_count(1)
    assert len(calls(fake_upstream)) == requests
