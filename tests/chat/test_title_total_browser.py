"""The running total in Chromium when the automatic title changes nothing on screen: the
offline demo model's title call (its reply is no title, the question stays the title) is
billed, and the total counts it at once, as a reload shows it."""

import re

import pytest
from playwright.sync_api import expect

from tests.chat.test_browser import EMAIL, log_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_the_demo_model_s_title_call_moves_the_running_total_live(start_aurax_server, page):
    server = start_aurax_server(PROVIDER_DEMO_TOKEN_DELAY="0")
    server.create_user(EMAIL, PASSWORD)
    # As at start-up with no provider configured: the offline demo model, the user's default.
    server.shell(
        "from accounts.models import User\n"
        "from providers.services import demo_credential_sync\n"
        "demo = demo_credential_sync()\n"
        f"User.objects.filter(email={EMAIL!r}).update(default_model=f'{{demo.id}}:aurax-demo')\n"
    )
    log_in(page, server)
    total = page.locator(".thread-total")

    page.fill("#composer-input", "Plan three days in Lisbon by train")
    page.press("#composer-input", "Enter")
    page.wait_for_selector(".msg-assistant[data-status=complete]")
    badge = page.locator(".msg-assistant .badge").inner_text()
    answer_in, answer_out = (int(n) for n in re.search(r"(\d+)/(\d+) tok", badge).groups())

    def figures():
        return tuple(int(n) for n in re.search(r"(\d+) / (\d+)", total.inner_text()).groups())

    # The title's call is in it: more than the answer's own figures.
    expect(total.locator("[data-total-input]")).not_to_have_text(str(answer_in))
    live = figures()
    assert live[0] > answer_in and live[1] > answer_out, (live, badge)
    expect(page.locator("#thread-title")).to_have_text("Plan three days in Lisbon by train")
    page.reload()
    page.wait_for_selector("#chat[data-socket=open]")
    assert figures() == live
