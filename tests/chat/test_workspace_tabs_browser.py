"""Two tabs of one session in two workspaces, in Chromium: each tab's sidebar and `/` picker
keep showing its own workspace; an action the server refuses says so on the page."""

import re

import pytest
from playwright.sync_api import expect

from tests.chat.test_sharing_browser import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "two-hats@example.com"


@pytest.fixture
def server(start_aurax_server):
    server = start_aurax_server()
    server.create_user(EMAIL, PASSWORD)
    server.shell(
        "from accounts.models import User\n"
        "from chat import services\n"
        "from prompts.services import prompt_template_save\n"
        "from workspaces.models import Membership\n"
        "from workspaces.services import workspace_create\n"
        f"user = User.objects.get(email={EMAIL!r})\n"
        "for name in ('Acme', 'Evil Corp'):\n"
        "    w = workspace_create(owner=user, name=name)\n"
        "    c = services.conversation_create(user=user, workspace=w)\n"
        "    services.conversation_rename(conversation=c, title=name + ' plans')\n"
        "    prompt_template_save(membership=Membership.objects.get(workspace=w, user=user),\n"
        "                         title=name + ' template', body='Hi', personal=False)\n"
    )
    return server


def switch(page, name):
    page.select_option("#workspace-select", label=name)
    page.wait_for_load_state("load")
    expect(page.locator("#conversation-list")).to_contain_text(f"{name} plans")


def test_each_tab_keeps_its_workspace_and_refusals_are_said(server, browser):
    context = browser.new_context(locale="en-US")
    acme = context.new_page()
    sign_in(acme, server, EMAIL)
    switch(acme, "Acme")
    evil = context.new_page()
    evil.goto(server.url + "/")
    switch(evil, "Evil Corp")  # the session's workspace is now Evil Corp

    # The first tab still lists and searches Acme's conversations...
    with acme.expect_response(re.compile(r"/chat/sidebar/")):
        acme.fill(".chat-search", "plans")
    expect(acme.locator("#conversation-list")).to_contain_text("Acme plans")
    expect(acme.locator("#conversation-list")).not_to_contain_text("Evil Corp plans")
    # ...and its picker offers Acme's templates.
    acme.fill("#composer-input", "/templ")
    expect(acme.locator(".prompt-picker")).to_contain_text("Acme template")
    expect(acme.locator(".prompt-picker")).not_to_contain_text("Evil Corp template")
    acme.keyboard.press("Escape")
    acme.fill("#composer-input", "")

    # Deleted in the other tab (opened there on Acme's conversation), then renamed here: the
    # refusal (404) is said on the page.
    with acme.expect_response(re.compile(r"/chat/sidebar/")):
        acme.fill(".chat-search", "")
    item = acme.locator(".conversation-item", has_text="Acme plans")
    conversation_id = item.get_attribute("data-conversation-id")
    evil.goto(f"{server.url}/c/{conversation_id}/")
    evil.locator(f'.conversation-item[data-conversation-id="{conversation_id}"] summary').click()
    evil.once("dialog", lambda dialog: dialog.accept())
    evil.locator(
        f'.conversation-item[data-conversation-id="{conversation_id}"] .danger-link'
    ).click()
    expect(evil.locator(f'[data-conversation-id="{conversation_id}"]')).to_have_count(0)

    item.locator("summary").click()
    item.locator("input[name=title]").fill("Renamed")
    item.locator(".rename-form button").click()
    expect(acme.locator("#page-alert")).to_have_text(re.compile("no longer there"))
