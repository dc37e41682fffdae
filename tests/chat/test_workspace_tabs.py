"""A chat page stays bound to the workspace it shows: what it asks for later (its sidebar, its
`/` template picker, its cost estimate, "New chat") names that workspace, so a second tab of
the same session switching to another workspace does not change what the first one lists."""

import pytest
from django.urls import reverse

from chat import services
from prompts.services import prompt_template_save
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import Membership, Role
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def two(user):
    """The user's two team workspaces, each with a conversation and a shared template."""
    made = {}
    for name in ("Acme", "Evil Corp"):
        workspace = workspace_create(owner=user, name=name)
        membership = Membership.objects.get(workspace=workspace, user=user)
        conversation = services.conversation_create(user=user, workspace=workspace)
        services.conversation_rename(conversation=conversation, title=f"{name} plans")
        prompt_template_save(
            membership=membership, title=f"{name} template", body="Hi", personal=False
        )
        made[name] = workspace
    return made


def _session_in(client, workspace):
    session = client.session
    session[CURRENT_WORKSPACE_SESSION_KEY] = workspace.pk
    session.save()


def test_the_sidebar_lists_the_workspace_the_page_names_not_the_sessions(logged_in_client, two):
    page = logged_in_client.get("/", {"workspace": two["Acme"].slug})  # tab 1: Acme
    assert "Acme plans" in page.text
    assert f"?workspace={two['Acme'].slug}" in page.text  # its sidebar's and picker's URLs
    _session_in(logged_in_client, two["Evil Corp"])  # tab 2 switches

    sidebar = logged_in_client.get(reverse("chat_sidebar"), {"workspace": two["Acme"].slug})

    assert "Acme plans" in sidebar.text and "Evil Corp plans" not in sidebar.text
    # Searching and the list's refresh name it too.
    assert page.text.count(f"{reverse('chat_sidebar')}?workspace={two['Acme'].slug}") == 2
    # Without a name, the session's workspace (an older page).
    assert "Evil Corp plans" in logged_in_client.get(reverse("chat_sidebar")).text


def test_the_template_picker_lists_the_workspace_the_page_names(logged_in_client, two):
    _session_in(logged_in_client, two["Evil Corp"])

    found = logged_in_client.get(
        reverse("prompt_template_search"), {"workspace": two["Acme"].slug, "q": "template"}
    ).json()["templates"]

    assert [t["title"] for t in found] == ["Acme template"]


def test_new_chat_opens_in_the_workspace_of_the_tab_it_was_clicked_in(logged_in_client, two):
    _session_in(logged_in_client, two["Evil Corp"])

    page = logged_in_client.get("/", {"workspace": two["Acme"].slug})

    assert 'data-workspace="' + two["Acme"].slug + '"' in page.text
    assert logged_in_client.session[CURRENT_WORKSPACE_SESSION_KEY] == two["Acme"].pk


def test_a_workspace_the_user_is_not_in_is_not_found(logged_in_client, two):
    stranger = workspace_create(owner=UserFactory(), name="Elsewhere")
    for url in (reverse("chat_sidebar"), reverse("prompt_template_search"), "/"):
        assert logged_in_client.get(url, {"workspace": stranger.slug}).status_code == 404


def test_a_viewer_is_not_offered_renaming_pinning_or_deleting(client, two, user):
    viewer = UserFactory()
    MembershipFactory(workspace=two["Acme"], user=viewer, role=Role.MEMBER)
    mine = services.conversation_create(user=viewer, workspace=two["Acme"])
    services.conversation_rename(conversation=mine, title="My notes")
    client.force_login(viewer)
    url = reverse("chat_sidebar")
    assert "conversation-menu" in client.get(url, {"workspace": two["Acme"].slug}).text

    Membership.objects.filter(user=viewer, workspace=two["Acme"]).update(role=Role.VIEWER)

    listed = client.get(url, {"workspace": two["Acme"].slug}).text
    assert "My notes" in listed and "conversation-menu" not in listed
    # (What the menu offered is refused them.)
    assert client.post(reverse("chat_rename", args=[mine.pk]), {"title": "x"}).status_code == 403


def test_usage_and_plan_links_are_shown_to_the_workspaces_admins_only(client, two, user):
    member = UserFactory()
    MembershipFactory(workspace=two["Acme"], user=member, role=Role.MEMBER)
    client.force_login(member)
    _session_in(client, two["Acme"])
    page = client.get(reverse("prompt_templates")).text
    assert reverse("usage") not in page and reverse("billing_plan") not in page

    Membership.objects.filter(user=member, workspace=two["Acme"]).update(role=Role.ADMIN)

    page = client.get(reverse("prompt_templates")).text
    assert reverse("usage") in page and reverse("billing_plan") in page
