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
    return [r for r in fake_upstream.requests if r["method"] == "POST"]


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
