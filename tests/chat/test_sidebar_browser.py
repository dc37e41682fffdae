"""The conversation sidebar in Chromium: its later pages load as it scrolls; the conversation
on screen stands out, a new one as soon as its first message is sent."""

import pytest
from playwright.sync_api import expect

from tests.chat import test_browser
from tests.chat.test_sharing_browser import ask, sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

chat_server = test_browser.chat_server  # a user whose default model answers

EMAIL = "scroller@example.com"


@pytest.fixture
def server(start_aurax_server):
    server = start_aurax_server()
    server.create_user(EMAIL, PASSWORD)
    return server


def test_scrolling_the_sidebar_to_its_end_loads_the_older_conversations(server, page):
    server.shell(
        "import datetime as dt\n"
        "from django.utils import timezone\n"
        "from accounts.models import User\n"
        "from chat.models import Conversation\n"
        "from workspaces.selectors import personal_workspace_get\n"
        f"user = User.objects.get(email={EMAIL!r})\n"
        "w = personal_workspace_get(user=user)\n"
        "now = timezone.now()\n"
        "for i in range(1, 121):\n"
        "    c = Conversation.objects.create(user=user, workspace=w, title=f'Chat {i}')\n"
        "    Conversation.objects.filter(pk=c.pk).update(\n"
        "        updated_at=now - dt.timedelta(minutes=i))\n"
    )
    sign_in(page, server, EMAIL)
    items = page.locator("#conversation-list .conversation-item")
    expect(items).to_have_count(50)
    oldest = page.locator("#conversation-list .conversation-link", has_text="Chat 120")
    for _ in range(20):
        if oldest.count():
            break
        # Scroll whichever of the two scrolls: the list, or the sidebar around it.
        page.evaluate(
            "for (const el of [document.querySelector('#conversation-list'),"
            " document.querySelector('aside.sidebar')]) el.scrollTop = el.scrollHeight"
        )
        page.wait_for_timeout(250)
    expect(oldest).to_be_visible()
    expect(items).to_have_count(120)
    expect(page.locator("#conversation-list .load-more")).to_have_count(0)


def _rgb(page, selector) -> list[int]:
    """An element's background as drawn: [r, g, b] (color-mix() and friends resolved)."""
    return page.eval_on_selector(
        selector,
        """el => {
            const ctx = document.createElement("canvas").getContext("2d");
            ctx.fillStyle = getComputedStyle(el).backgroundColor;
            ctx.fillRect(0, 0, 1, 1);
            return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
        }""",
    )


def test_a_new_conversation_is_highlighted_once_its_first_message_is_sent(chat_server, page):
    sign_in(page, chat_server, test_browser.EMAIL)
    conversation_id = ask(page, "Hello there")
    active = page.locator("#conversation-list .conversation-item.active")
    expect(active).to_have_count(1)
    expect(active).to_have_attribute("data-conversation-id", str(conversation_id))
    # The sidebar refreshed again (another answer) keeps it highlighted.
    ask(page, "And again")
    expect(active).to_have_attribute("data-conversation-id", str(conversation_id))
    page.mouse.move(0, 0)  # no hover colour
    for theme in ("light", "dark"):
        page.evaluate(f"document.documentElement.dataset.theme = {theme!r}")
        item = _rgb(page, "#conversation-list .conversation-item.active")
        sidebar = _rgb(page, "aside.sidebar")
        assert sum(abs(a - b) for a, b in zip(item, sidebar, strict=True)) >= 40, (theme, item)
