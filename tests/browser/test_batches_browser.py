"""The batches page in Chromium: it follows a running batch without a reload, and cancels one
after asking."""

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

MAKE = (
    "import json\n"
    "from datetime import timedelta\n"
    "from django.utils import timezone\n"
    "from accounts.models import User\n"
    "from batches.models import Batch\n"
    "from workspaces.models import Membership\n"
    "user = User.objects.get(email={email!r})\n"
    "now = timezone.now()\n"
    "b = Batch.objects.create(public_id={batch!r}, user=user, status='in_progress',\n"
    "    workspace=Membership.objects.get(user=user).workspace, total=2,\n"
    "    endpoint='/v1/chat/completions', input_file_id='file-x', created_at=now,\n"
    "    expires_at=now + timedelta(hours=24))\n"
    "print(json.dumps(b.pk))\n"
)

FINISH = (
    "from batches.models import Batch, BatchFile\n"
    "b = Batch.objects.get(public_id={batch!r})\n"
    "out = BatchFile.objects.create(public_id='file-' + b.public_id, workspace=b.workspace,\n"
    "    user=b.user, purpose='batch_output', filename='out.jsonl', size=3, data=b'{{}}\\n')\n"
    "Batch.objects.filter(pk=b.pk).update(status='completed', completed=2, output_file=out)\n"
)


def open_page(browser_context, server, email, batch):
    session = server.session_for(email, PASSWORD)
    server.shell_json(MAKE.format(email=email, batch=batch))
    browser_context.add_cookies([{"name": "sessionid", "value": session, "url": server.url}])
    page = browser_context.new_page()
    page.goto(server.url + "/settings/batches/")
    return page


def test_the_page_follows_a_running_batch_until_it_finishes(aurax_server, browser_context):
    email, batch = "batch-follow@example.com", "batch_followed"
    page = open_page(browser_context, aurax_server, email, batch)
    row = page.locator(f'tr[data-batch-id="{batch}"]')
    assert row.get_attribute("data-status") == "in_progress"
    assert "0 answered, 0 failed of 2" in row.inner_text()
    page.evaluate("window.notReloaded = true")

    aurax_server.shell(FINISH.format(batch=batch))
    page.wait_for_selector(f'tr[data-batch-id="{batch}"][data-status="completed"]', timeout=10_000)
    assert "2 answered, 0 failed of 2" in row.inner_text()
    assert row.locator("a", has_text="answers").get_attribute("href").endswith(f"file-{batch}/")
    assert page.evaluate("window.notReloaded") is True  # refreshed in place
    assert page.locator("#batches[hx-trigger]").count() == 0  # and it stops asking


def test_cancel_asks_first_then_cancels(aurax_server, browser_context):
    email, batch = "batch-cancel@example.com", "batch_cancelled_here"
    page = open_page(browser_context, aurax_server, email, batch)
    row = page.locator(f'tr[data-batch-id="{batch}"]')

    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Cancel").click()
    assert row.get_attribute("data-status") == "in_progress"

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_selector(f'tr[data-batch-id="{batch}"][data-status="cancelling"]')
    assert "Batch cancelled" in page.content()
