"""Workspace pages on a phone, in Chromium against a real server."""

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

OWNER = "owner-with-a-rather-long-address@example.com"
LONG_NAME = "Quarterly planning for the north-east regional research and development group " + (
    "x" * 24
)


@pytest.fixture(scope="module")
def team(aurax_server):
    aurax_server.create_user(OWNER, PASSWORD)
    aurax_server.create_user("teammate-with-a-long-address@example.com", PASSWORD)
    return aurax_server.shell_json(
        "import json\n"
        "from accounts.models import User\n"
        "from workspaces.models import Membership\n"
        "from workspaces.services import workspace_create\n"
        f"w = workspace_create(owner=User.objects.get(email={OWNER!r}), name={LONG_NAME!r})\n"
        "Membership.objects.create(workspace=w, role='member', user=User.objects.get(\n"
        "    email='teammate-with-a-long-address@example.com'))\n"
        "print(json.dumps(w.slug))\n"
    )


@pytest.fixture
def phone(browser, aurax_server):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-US"
    )
    page = context.new_page()
    page.goto(f"{aurax_server.url}/accounts/login/")
    page.fill("input[name=login]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector(".sidebar .whoami")
    yield page
    context.close()


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_members_page_fits_a_phone(aurax_server, team, phone):
    phone.goto(f"{aurax_server.url}/w/{team}/")
    phone.wait_for_selector("table.members select[name=role]")
    assert phone.locator("table.members button:has-text('Make owner')").count() == 1
    assert page_width(phone) <= 390
    for control in ("select[name=role]", "button:has-text('Remove')"):
        box = phone.locator(f"table.members {control}").first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, control


def test_a_long_workspace_name_fits_the_list_and_leaves_its_avatar_square(
    aurax_server, team, phone
):
    phone.goto(f"{aurax_server.url}/w/")
    assert page_width(phone) <= 390
    avatar = phone.locator(".workspace-list li", has_text=LONG_NAME[:20]).locator(".avatar")
    box = avatar.bounding_box()
    assert abs(box["width"] - box["height"]) < 1 and box["width"] >= 20


def test_the_colour_picker_shows_its_swatch(aurax_server, team, phone):
    for path in ("/w/", f"/w/{team}/settings/"):
        phone.goto(aurax_server.url + path)
        # The swatch is the input's content box.
        swatch = phone.locator("input[type=color]").evaluate(
            "el => { const s = getComputedStyle(el); return ["
            "el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight),"
            "el.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom)]; }"
        )
        assert swatch[0] >= 30 and swatch[1] >= 20, (path, swatch)
        assert page_width(phone) <= 390, path


def test_the_files_meter_is_a_bar_across_the_settings_page(aurax_server, team, phone):
    phone.goto(f"{aurax_server.url}/w/{team}/settings/")
    meter = phone.locator(".workspace-files .budget-meter").bounding_box()
    assert meter["height"] < 20 and meter["width"] > 200
    assert page_width(phone) <= 390
