"""The conversation sidebar in Chromium: its later pages load as it scrolls."""

import pytest
from playwright.sync_api import expect

from tests.chat.test_sharing_browser import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

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
