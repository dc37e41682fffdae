"""Buttons as Chromium draws them."""

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

DANGER = {"light": "rgb(198, 40, 40)", "dark": "rgb(239, 83, 80)"}  # --danger of each theme
SOFT = {"light": "rgb(244, 245, 247)", "dark": "rgb(30, 33, 40)"}  # --bg-soft, plain buttons


@pytest.fixture(scope="module")
def team(aurax_server):
    """An owner, an admin and a conversation with a public link in their team workspace."""
    owner = aurax_server.session_for("danger-owner@example.com", PASSWORD)
    admin = aurax_server.session_for("danger-admin@example.com", PASSWORD)
    made = aurax_server.shell_json(
        "import json\n"
        "from accounts.models import User\n"
        "from chat.services import conversation_create, conversation_share, public_link_create\n"
        "from workspaces.models import Membership, Role\n"
        "from workspaces.services import workspace_create\n"
        "owner = User.objects.get(email='danger-owner@example.com')\n"
        "w = workspace_create(owner=owner, name='Danger team')\n"
        "w.public_links_enabled = True\n"
        "w.save()\n"
        "Membership.objects.create(workspace=w, role=Role.ADMIN,\n"
        "    user=User.objects.get(email='danger-admin@example.com'))\n"
        "c = conversation_create(user=owner, workspace=w)\n"
        "public_link_create(conversation=c, actor=owner)\n"
        "shared = conversation_share(conversation=conversation_create(user=owner, workspace=w),\n"
        "    actor=owner)\n"
        "print(json.dumps({'slug': w.slug, 'conversation': c.pk, 'shared': shared.pk}))\n"
    )
    return {"owner": owner, "admin": admin, **made}


def background_of(browser, server, session: str, path: str, button: str, theme: str) -> str:
    context = browser.new_context(locale="en-US", color_scheme=theme)
    try:
        context.add_cookies([{"name": "sessionid", "value": session, "url": server.url}])
        page = context.new_page()
        page.goto(server.url + path)
        return page.locator(button).evaluate("b => getComputedStyle(b).backgroundColor")
    finally:
        context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_destructive_buttons_are_red(aurax_server, browser, team, theme):
    slug, conversation = team["slug"], team["conversation"]
    buttons = [
        ("owner", f"/w/{slug}/settings/", "button.danger >> text=Delete this workspace"),
        ("admin", f"/w/{slug}/", "button.danger >> text=Leave workspace"),
        ("owner", f"/c/{conversation}/", "button.danger >> text=Revoke the public link"),
    ]
    for who, path, button in buttons:
        colour = background_of(browser, aurax_server, team[who], path, button, theme)
        assert colour == DANGER[theme], (path, button, colour)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_stop_sharing_is_not_drawn_as_the_main_action(aurax_server, browser, team, theme):
    owner = team["owner"]
    primary = background_of(
        browser,
        aurax_server,
        owner,
        f"/c/{team['conversation']}/",
        "button >> text=Share with the workspace",
        theme,
    )
    stop = background_of(
        browser, aurax_server, owner, f"/c/{team['shared']}/", "button >> text=Stop sharing", theme
    )

    assert stop != primary, (primary, stop)
    assert stop == SOFT[theme], stop
