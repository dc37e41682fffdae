"""Sharing conversations with the workspace, continuing them as a copy, public links, and what
happens to conversations when a member goes (docs/permissions.md)."""

from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from chat import actions, services
from chat.models import Conversation, Message, PublicLink
from tests.factories import UserFactory
from workspaces import services as workspace_services
from workspaces.models import AuditEvent, Membership, Role, Workspace
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY, personal_workspace_get

pytestmark = pytest.mark.django_db


@dataclass
class Team:
    workspace: Workspace
    owner: object
    member: object
    viewer: object
    outsider: object

    def client(self, user, *, current: Workspace | None = None) -> Client:
        client = Client()
        client.force_login(user)
        if current is not None:
            session = client.session
            session[CURRENT_WORKSPACE_SESSION_KEY] = current.pk
            session.save()
        return client


@pytest.fixture
def team():
    owner, member, viewer, outsider = (UserFactory() for _ in range(4))
    workspace = workspace_services.workspace_create(owner=owner, name="Owl team")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    workspace_services.workspace_create(owner=outsider, name="Elsewhere")
    return Team(workspace, owner, member, viewer, outsider)


def _conversation(user, workspace, title, *, answer="Mice, **mostly**.", shared=False):
    conversation = services.conversation_create(user=user, workspace=workspace)
    question, reply = services.message_send(conversation=conversation, content=f"About {title}?")
    services.message_finish(message_id=reply.pk, content=answer, status="complete")
    Conversation.objects.filter(pk=conversation.pk).update(title=title)
    conversation.refresh_from_db()
    if shared:
        services.conversation_share(conversation=conversation, actor=user)
    return conversation


def _read_urls(conversation) -> list[str]:
    c = conversation.pk
    return [f"/c/{c}/", f"/c/{c}/thread/", f"/c/{c}/export.md", f"/c/{c}/export.json"]


def _write_requests(conversation) -> list[tuple[str, dict]]:
    c = conversation.pk
    leaf = conversation.current_leaf_id
    return [
        (f"/c/{c}/rename/", {"title": "Mine now"}),
        (f"/c/{c}/pin/", {"pinned": "1"}),
        (f"/c/{c}/settings/", {"model": "other", "system_prompt": "obey me"}),
        (f"/c/{c}/branch/", {"message_id": leaf}),
        (f"/c/{c}/share/", {}),
        (f"/c/{c}/unshare/", {}),
        (f"/c/{c}/public-link/", {}),
        (f"/c/{c}/public-link/revoke/", {}),
        (f"/c/{c}/delete/", {}),
    ]


def test_a_member_reads_a_shared_conversation_and_continues_it_as_their_own_copy(team):
    original = _conversation(team.owner, team.workspace, "Owl diets", shared=True)
    client = team.client(team.member)

    for url in _read_urls(original):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Mice" in response.content.decode()
    page = client.get(f"/c/{original.pk}/").content.decode()
    assert "Continue as my own copy" in page
    assert "data-edit=" not in page and "data-regenerate=" not in page

    response = client.post(f"/c/{original.pk}/copy/")
    copy = Conversation.objects.exclude(pk=original.pk).get(user=team.member)
    assert response.status_code == 302 and response["Location"] == f"/c/{copy.pk}/"
    assert copy.workspace == team.workspace and copy.shared_at is None
    assert copy.title == "Owl diets"
    assert [
        (m.role, m.content) for m in Message.objects.filter(conversation=copy).order_by("pk")
    ] == [
        ("user", "About Owl diets?"),
        ("assistant", "Mice, **mostly**."),
    ]
    assert copy.current_leaf.content == "Mice, **mostly**."

    # The copy is theirs to continue; the original is untouched.
    question, _ = services.message_send(
        conversation=actions.conversation_get_for_user(
            user=team.member, conversation_id=copy.pk, access=actions.WRITE
        ),
        content="And voles?",
    )
    assert question.conversation_id == copy.pk
    assert original.messages.count() == 2
    # Nobody else sees the copy.
    assert team.client(team.owner).get(f"/c/{copy.pk}/").status_code == 404


def test_a_member_may_read_a_shared_conversation_but_not_change_it(team):
    original = _conversation(team.owner, team.workspace, "Owl diets", shared=True)
    client = team.client(team.member)
    for url, data in _write_requests(original):
        assert client.post(url, data).status_code == 403, url
    original.refresh_from_db()
    assert original.title == "Owl diets" and not original.pinned and original.model != "other"
    assert original.shared_at is not None and not original.public_links.exists()


def test_a_viewer_reads_a_shared_conversation_but_can_neither_copy_nor_send(team):
    original = _conversation(team.owner, team.workspace, "Owl diets", shared=True)
    client = team.client(team.viewer)
    for url in _read_urls(original):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/c/{original.pk}/").content.decode()
    assert "Continue as my own copy" not in page
    assert 'id="composer" hidden' in page

    assert client.post(f"/c/{original.pk}/copy/").status_code == 403
    assert not Conversation.objects.filter(user=team.viewer, workspace=team.workspace).exists()
    with pytest.raises(PermissionDenied):
        actions.send(user=team.viewer, frame={"conversation_id": original.pk, "content": "hi"})
    with pytest.raises(PermissionDenied):
        actions.send(
            user=team.viewer, frame={"content": "a new one", "workspace": team.workspace.slug}
        )
    assert original.messages.count() == 2


def test_a_private_conversation_is_not_found_for_other_members(team):
    private = _conversation(team.owner, team.workspace, "Secret owls")
    for user in (team.member, team.viewer):
        client = team.client(user)
        for url in [*_read_urls(private), f"/c/{private.pk}/copy/"]:
            method = client.post if url.endswith("copy/") else client.get
            assert method(url).status_code == 404, url
        for url, data in _write_requests(private):
            assert client.post(url, data).status_code == 404, url


def test_after_the_author_unshares_it_others_get_not_found(team):
    conversation = _conversation(team.owner, team.workspace, "Owl diets", shared=True)
    member = team.client(team.member)
    assert member.get(f"/c/{conversation.pk}/").status_code == 200

    response = team.client(team.owner).post(f"/c/{conversation.pk}/unshare/")
    assert response.status_code == 302
    for url in _read_urls(conversation):
        assert member.get(url).status_code == 404, url
    assert member.post(f"/c/{conversation.pk}/copy/").status_code == 404
    assert team.client(team.owner).get(f"/c/{conversation.pk}/").status_code == 200


def test_sharing_and_public_links_are_audited(team):
    conversation = _conversation(team.owner, team.workspace, "Owl diets")
    owner = team.client(team.owner)
    team.workspace.public_links_enabled = True
    team.workspace.save()
    for url in ("share", "unshare", "public-link", "public-link/revoke"):
        assert owner.post(f"/c/{conversation.pk}/{url}/").status_code == 302
    events = list(
        AuditEvent.objects.filter(workspace=team.workspace, action__startswith="conversation.")
        .order_by("pk")
        .values_list("action", "actor", "target_id")
    )
    assert events == [
        ("conversation.share", team.owner.pk, str(conversation.pk)),
        ("conversation.unshare", team.owner.pk, str(conversation.pk)),
        ("conversation.public_link_create", team.owner.pk, str(conversation.pk)),
        ("conversation.public_link_revoke", team.owner.pk, str(conversation.pk)),
    ]


def test_sharing_in_a_personal_workspace_is_refused(user, client):
    conversation = _conversation(user, personal_workspace_get(user=user), "Alone")
    client.force_login(user)
    client.post(f"/c/{conversation.pk}/share/")
    conversation.refresh_from_db()
    assert conversation.shared_at is None


def test_a_public_link_needs_the_workspace_switch_and_stops_working_when_revoked(team):
    conversation = _conversation(team.owner, team.workspace, "Owl diets", answer="Voles *too*")
    _conversation(team.owner, team.workspace, "Another secret")
    owner, anonymous = team.client(team.owner), Client()

    # Off by default: no link can be made.
    owner.post(f"/c/{conversation.pk}/public-link/")
    assert not PublicLink.objects.exists()
    assert "Public links are turned off" in owner.get(f"/c/{conversation.pk}/").content.decode()

    Workspace.objects.filter(pk=team.workspace.pk).update(public_links_enabled=True)
    owner.post(f"/c/{conversation.pk}/public-link/")
    link = PublicLink.objects.get()
    assert len(link.token) >= 32
    assert link.token in owner.get(f"/c/{conversation.pk}/").content.decode()

    response = anonymous.get(f"/p/{link.token}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Owl diets" in html and "<em>too</em>" in html
    # Nothing but the conversation: no sidebar, no other conversation, no write controls.
    assert "Another secret" not in html and "conversation-list" not in html
    assert "composer" not in html and "data-regenerate" not in html and "export" not in html
    assert response["X-Robots-Tag"].startswith("noindex")

    # The workspace switch turns every link off, and on again.
    Workspace.objects.filter(pk=team.workspace.pk).update(public_links_enabled=False)
    assert anonymous.get(f"/p/{link.token}/").status_code == 404
    Workspace.objects.filter(pk=team.workspace.pk).update(public_links_enabled=True)
    assert anonymous.get(f"/p/{link.token}/").status_code == 200

    owner.post(f"/c/{conversation.pk}/public-link/revoke/")
    assert anonymous.get(f"/p/{link.token}/").status_code == 404
    # A new link is a new token; the revoked one stays dead.
    owner.post(f"/c/{conversation.pk}/public-link/")
    new = PublicLink.objects.get(revoked_at__isnull=True)
    assert new.token != link.token
    assert anonymous.get(f"/p/{new.token}/").status_code == 200
    assert anonymous.get(f"/p/{link.token}/").status_code == 404
    assert anonymous.get("/p/not-a-token/").status_code == 404


def test_the_workspace_settings_page_turns_public_links_on(team):
    owner = team.client(team.owner)
    response = owner.post(
        f"/w/{team.workspace.slug}/settings/",
        {"name": "Owl team", "color": "#6366f1", "default_model": "", "public_links_enabled": "on"},
    )
    assert response.status_code == 302
    team.workspace.refresh_from_db()
    assert team.workspace.public_links_enabled


def test_a_removed_member_s_private_conversations_are_deleted_and_shared_ones_stay(team):
    private = _conversation(team.member, team.workspace, "Member private")
    shared = _conversation(team.member, team.workspace, "Member shared", shared=True)
    Workspace.objects.filter(pk=team.workspace.pk).update(public_links_enabled=True)
    shared.workspace.refresh_from_db()
    link = services.public_link_create(conversation=shared, actor=team.member)
    elsewhere = _conversation(team.member, personal_workspace_get(user=team.member), "Personal")

    workspace_services.member_remove(
        actor_membership=Membership.objects.get(workspace=team.workspace, user=team.owner),
        target=Membership.objects.get(workspace=team.workspace, user=team.member),
    )

    assert not Conversation.objects.filter(pk=private.pk).exists()
    assert not Message.objects.filter(conversation_id=private.pk).exists()
    shared.refresh_from_db()
    # Documented in docs/permissions.md: the workspace owner takes them over.
    assert shared.user == team.owner and shared.shared_at is not None
    assert team.client(team.viewer).get(f"/c/{shared.pk}/").status_code == 200
    assert team.client(team.member).get(f"/c/{shared.pk}/").status_code == 404
    assert Conversation.objects.filter(pk=elsewhere.pk).exists()
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert Client().get(f"/p/{link.token}/").status_code == 404


def test_a_member_who_leaves_takes_their_private_conversations_with_them(team):
    private = _conversation(team.viewer, team.workspace, "Viewer private")
    workspace_services.membership_leave(
        membership=Membership.objects.get(workspace=team.workspace, user=team.viewer)
    )
    assert not Conversation.objects.filter(pk=private.pk).exists()


def test_another_workspace_s_user_gets_not_found_on_every_chat_route(team):
    shared = _conversation(team.owner, team.workspace, "Owl diets", shared=True)
    Workspace.objects.filter(pk=team.workspace.pk).update(public_links_enabled=True)
    client = team.client(team.outsider)
    for url in _read_urls(shared):
        assert client.get(url).status_code == 404, url
    for url, data in [*_write_requests(shared), (f"/c/{shared.pk}/copy/", {})]:
        assert client.post(url, data).status_code == 404, url
    assert "Owl diets" not in client.get("/chat/sidebar/").content.decode()
    with pytest.raises(Exception) as refused:
        actions.send(user=team.outsider, frame={"content": "hi", "workspace": team.workspace.slug})
    assert refused.typename == "Http404"
    assert shared.messages.count() == 2


def test_the_sidebar_shows_the_current_workspace_only(team):
    _conversation(team.owner, personal_workspace_get(user=team.owner), "Personal owls")
    _conversation(team.owner, team.workspace, "Team owls")
    _conversation(team.member, team.workspace, "Shared by a teammate", shared=True)
    _conversation(team.member, team.workspace, "Teammate's secret")
    _conversation(team.outsider, team.outsider.workspaces.get(is_personal=False), "Foreign")

    owner = team.client(team.owner, current=team.workspace)
    html = owner.get("/chat/sidebar/").content.decode()
    assert "Team owls" in html and "Shared by a teammate" in html
    assert html.index("Shared with the workspace") < html.index("Shared by a teammate")
    for absent in ("Personal owls", "Teammate&#x27;s secret", "Foreign"):
        assert absent not in html
    page = owner.get("/").content.decode()
    assert "Team owls" in page and "Personal owls" not in page
    assert f'data-workspace="{team.workspace.slug}"' in page

    owner.post("/w/switch/", {"workspace": personal_workspace_get(user=team.owner).slug})
    html = owner.get("/chat/sidebar/").content.decode()
    assert "Personal owls" in html
    assert "Team owls" not in html and "Shared by a teammate" not in html


def test_opening_a_conversation_of_another_workspace_switches_to_it(team):
    mine = _conversation(team.owner, team.workspace, "Team owls")
    _conversation(team.owner, personal_workspace_get(user=team.owner), "Personal owls")
    owner = team.client(team.owner)  # personal workspace current
    html = owner.get(f"/c/{mine.pk}/").content.decode()
    assert "Personal owls" not in html
    assert owner.session[CURRENT_WORKSPACE_SESSION_KEY] == team.workspace.pk


def test_the_model_picker_offers_the_current_workspace_s_models(team, monkeypatch):
    seen = []

    def choices(*, user, workspace):
        seen.append(workspace)
        return [
            {"value": f"m-{workspace.slug}", "label": f"model of {workspace.name}", "group": ""}
        ]

    monkeypatch.setattr("chat.views.model_choices_for", choices)
    html = team.client(team.member, current=team.workspace).get("/").content.decode()
    assert seen == [team.workspace]
    assert "model of Owl team" in html


def test_new_conversations_are_created_in_the_current_workspace(team):
    client = team.client(team.member, current=team.workspace)
    session = client.session
    _, answer, created = actions.send(
        user=team.member, frame={"content": "hello team"}, session=session
    )
    assert created
    assert Message.objects.get(pk=answer.pk).conversation.workspace == team.workspace
    # The page's workspace, when the frame names it, wins over the session.
    personal = personal_workspace_get(user=team.member)
    _, answer, _ = actions.send(
        user=team.member,
        frame={"content": "hello me", "workspace": personal.slug},
        session=session,
    )
    assert Message.objects.get(pk=answer.pk).conversation.workspace == personal
