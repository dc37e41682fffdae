"""A language chosen in one tab, in Chromium: the tab that chose it reloads in it, and so does
the user's other open chat tab, by itself; one with something typed in it is not reloaded
under the user's hands: it says the language changed and offers to reload."""

import pytest
from playwright.sync_api import expect

from tests.chat.test_sharing_browser import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "polyglot@example.com"


@pytest.fixture
def tabs(start_aurax_server, browser):
    server = start_aurax_server()
    server.create_user(EMAIL, PASSWORD)
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(10_000)
    chat = context.new_page()
    sign_in(chat, server, EMAIL)
    chat.wait_for_selector("#chat[data-socket=open]")
    other = context.new_page()
    other.goto(server.url + "/")
    other.wait_for_selector("#chat[data-socket=open]")
    yield chat, other
    context.close()


def test_an_open_chat_tab_reloads_in_the_language_chosen_in_another(tabs):
    chat, other = tabs
    expect(chat.locator("#send-button")).to_have_text("Send")

    other.select_option("#language-select", "es")  # submits the picker's form

    expect(other.locator("#send-button")).to_have_text("Enviar")
    expect(chat.locator("html")).to_have_attribute("lang", "es")
    expect(chat.locator("#send-button")).to_have_text("Enviar")
    chat.wait_for_selector("#chat[data-socket=open]")
    expect(chat.locator("#language-notice")).to_be_hidden()


def test_a_tab_with_a_message_being_typed_says_so_and_keeps_it(tabs):
    chat, other = tabs
    chat.fill("#composer-input", "half a thought")

    other.select_option("#language-select", "pt-br")
    expect(other.locator("#send-button")).to_have_text("Enviar")

    notice = chat.locator("#language-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Your language was changed in another tab.")
    expect(chat.locator("#composer-input")).to_have_value("half a thought")
    expect(chat.locator("html")).to_have_attribute("lang", "en")

    notice.get_by_role("button", name="Reload this page").click()
    expect(chat.locator("html")).to_have_attribute("lang", "pt-br")
    expect(chat.locator("#send-button")).to_have_text("Enviar")


def test_a_tab_whose_socket_was_away_when_the_language_changed_follows_on_reconnecting(
    start_aurax_server, browser
):
    import re

    server = start_aurax_server()
    server.create_user(EMAIL, PASSWORD)
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(10_000)
    chat = context.new_page()
    sockets = []

    def relay(socket):  # every chat socket of the page, passed through to the server
        socket.connect_to_server()
        sockets.append(socket)

    chat.route_web_socket(re.compile(r"/ws/chat/"), relay)
    sign_in(chat, server, EMAIL)
    chat.wait_for_selector("#chat[data-socket=open]")
    assert "page_language=en" in sockets[-1].url

    # Saved while no socket of the page could hear it (here: with no announcement at all),
    # then the socket drops and the page reconnects.
    server.shell(
        "from accounts.models import User\n"
        f"User.objects.filter(email={EMAIL!r}).update(language='es')\n"
    )
    sockets[-1].close()

    expect(chat.locator("html")).to_have_attribute("lang", "es")
    expect(chat.locator("#send-button")).to_have_text("Enviar")
    context.close()
