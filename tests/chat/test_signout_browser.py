"""Signing out in one tab, in Chromium: the session's other open chat tab stops too and goes
to the sign-in page, rather than going on sending (and spending) on a socket opened before."""

import re

import pytest

from tests.chat.test_sharing_browser import sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

EMAIL = "leaving@example.com"


def test_signing_out_in_one_tab_sends_the_other_to_sign_in(start_aurax_server, browser):
    server = start_aurax_server()
    server.create_user(EMAIL, PASSWORD)
    context = browser.new_context(locale="en-US")
    chat = context.new_page()
    sign_in(chat, server, EMAIL)
    chat.wait_for_selector("#chat[data-socket=open]")
    other = context.new_page()
    other.goto(server.url + "/settings/preferences/")

    other.get_by_role("button", name="Sign out").click()

    chat.wait_for_url(re.compile(r"/accounts/login/"), timeout=10_000)
