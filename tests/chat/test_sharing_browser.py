"""Sharing in Chromium: an owner makes a team, invites a teammate, shares one conversation and
keeps another private."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

OWNER, FRIEND = "owner@example.com", "friend@example.com"


@pytest.fixture
def team_server(start_aurax_server, fake_upstream):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false", PROVIDER_RETRY_ATTEMPTS="1")
    for email in (OWNER, FRIEND):
        server.create_user(email, PASSWORD)
    server.shell(
        "from providers.services import credential_create\n"
        "from accounts.models import User\n"
        "c = credential_create(actor=None, scope='global', kind='openai', name='Fake', "
        f"api_key='sk-test-key-1234', base_url={fake_upstream.base_url('openai')!r}, "
        "allow_private_network=True)\n"
        "User.objects.update(default_model=f'{c.id}:fake-small')\n"
    )
    return server


def sign_in(page, server, email):
    page.goto(server.url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"^" + re.escape(server.url) + r"/(\?.*)?$"))


def ask(page, text) -> int:
    page.wait_for_selector("#chat[data-socket=open]")
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".msg-assistant[data-status=complete]", timeout=15_000)
    page.wait_for_url(re.compile(r"/c/\d+/$"))
    return int(re.search(r"/c/(\d+)/$", page.url).group(1))


def test_a_teammate_sees_the_shared_conversation_and_not_the_private_one(team_server, browser):
    owner = browser.new_context(locale="en-US").new_page()
    sign_in(owner, team_server, OWNER)
    owner.goto(team_server.url + "/w/")
    owner.fill("input[name=name]", "Owl team")
    owner.click("form.form button[type=submit]")
    owner.wait_for_url(re.compile(r"/w/owl-team[^/]*/$"))
    owner.fill("input[name=email]", FRIEND)
    owner.click("form.form-row button[type=submit]")
    expect(owner.locator("body")).to_contain_text(FRIEND)
    token = (
        team_server.shell(
            "from workspaces.models import Invitation\n"
            f"print('TOKEN=' + Invitation.objects.get(email={FRIEND!r}).token)\n"
        )
        .split("TOKEN=")[-1]
        .strip()
    )

    # New conversations land in the team workspace, now the current one.
    owner.goto(team_server.url + "/")
    shared_id = ask(owner, '@reply="the shared answer"')
    owner.click("#share-panel summary")
    owner.click("[data-share]")
    expect(owner.locator("[data-unshare]")).to_be_attached()
    owner.click("[data-new-chat]")
    private_id = ask(owner, '@reply="the private answer"')

    friend = browser.new_context(locale="en-US").new_page()
    sign_in(friend, team_server, FRIEND)
    friend.goto(f"{team_server.url}/invite/{token}/")
    friend.click("button:has-text('Accept invitation')")
    friend.wait_for_url(team_server.url + "/")

    shared_item = friend.locator(f".shared-conversations [data-conversation-id='{shared_id}']")
    expect(shared_item).to_be_visible()
    expect(friend.locator(f"[data-conversation-id='{private_id}']")).to_have_count(0)
    shared_item.locator("a").click()
    friend.wait_for_url(f"{team_server.url}/c/{shared_id}/")
    expect(friend.locator(".msg-assistant .msg-body")).to_contain_text("the shared answer")
    expect(friend.locator("#read-only-bar")).to_contain_text("read only")
    expect(friend.locator("#composer")).to_be_hidden()

    response = friend.goto(f"{team_server.url}/c/{private_id}/")
    assert response.status == 404
    assert "the private answer" not in friend.content()

    # Continuing as an own copy gives a private conversation to chat in.
    friend.goto(f"{team_server.url}/c/{shared_id}/")
    friend.click("[data-copy-conversation]")
    friend.wait_for_url(re.compile(r"/c/\d+/$"))
    assert not friend.url.endswith(f"/c/{shared_id}/")
    expect(friend.locator("#composer")).to_be_visible()
    friend.wait_for_selector("#chat[data-socket=open]")
    friend.fill("#composer-input", '@reply="continued by the friend"')
    friend.press("#composer-input", "Enter")
    expect(friend.locator(".msg-assistant[data-status=complete] .msg-body").last).to_contain_text(
        "continued by the friend", timeout=15_000
    )
    owner.context.close()
    friend.context.close()
