import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEvent, Invitation, Membership, Role, Workspace
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(user):
    return workspace_create(owner=user, name="Research")


def test_creating_a_workspace_makes_the_creator_owner_and_current(logged_in_client, user):
    response = logged_in_client.post(
        reverse("workspace_list"), {"name": "Design", "color": "#ff0066"}
    )
    workspace = Workspace.objects.get(name="Design")
    assert response["Location"] == reverse("workspace_members", args=[workspace.slug])
    assert Membership.objects.get(workspace=workspace, user=user).role == Role.OWNER
    assert workspace.color == "#ff0066"
    html = logged_in_client.get("/").content.decode()
    assert f'value="{workspace.slug}" selected' in html


def test_a_bad_colour_is_refused_with_a_field_error(logged_in_client):
    response = logged_in_client.post(reverse("workspace_list"), {"name": "X", "color": "#12345g"})
    assert response.status_code == 200
    assert "Pick a colour" in response.content.decode()
    assert not Workspace.objects.filter(name="X").exists()


def test_switching_to_a_foreign_workspace_is_not_found(logged_in_client):
    stranger_ws = workspace_create(owner=UserFactory(), name="Elsewhere")
    response = logged_in_client.post(reverse("workspace_switch"), {"workspace": stranger_ws.slug})
    assert response.status_code == 404


def test_admin_changes_roles_but_not_the_owner(logged_in_client, team, user):
    target = MembershipFactory(workspace=team, role=Role.MEMBER)
    logged_in_client.post(reverse("member_role", args=[team.slug, target.pk]), {"role": "viewer"})
    target.refresh_from_db()
    assert target.role == Role.VIEWER
    owner = Membership.objects.get(workspace=team, user=user)
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    client = logged_in_client.__class__()
    client.force_login(admin.user)
    client.post(reverse("member_role", args=[team.slug, owner.pk]), {"role": "viewer"})
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    event = AuditEvent.objects.get(action="member.role_change")
    assert event.data == {"from": "member", "to": "viewer"} and event.actor == user


def test_removing_a_member_and_leaving(logged_in_client, team):
    client = logged_in_client.__class__()
    target = MembershipFactory(workspace=team)
    logged_in_client.post(reverse("member_remove", args=[team.slug, target.pk]))
    assert not Membership.objects.filter(pk=target.pk).exists()
    leaver = MembershipFactory(workspace=team)
    client.force_login(leaver.user)
    client.post(reverse("workspace_leave", args=[team.slug]))
    assert not Membership.objects.filter(pk=leaver.pk).exists()
    assert {"member.remove", "member.leave"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_the_owner_cannot_leave_without_transferring(logged_in_client, team, user):
    logged_in_client.post(reverse("workspace_leave", args=[team.slug]))
    assert Membership.objects.filter(workspace=team, user=user, role=Role.OWNER).exists()


def test_transfer_ownership(logged_in_client, team, user):
    heir = MembershipFactory(workspace=team, role=Role.MEMBER)
    logged_in_client.post(
        reverse("workspace_transfer", args=[team.slug]), {"membership_id": heir.pk}
    )
    heir.refresh_from_db()
    assert heir.role == Role.OWNER
    assert Membership.objects.get(workspace=team, user=user).role == Role.ADMIN


def test_only_the_owner_deletes_and_only_with_the_name_typed(logged_in_client, team):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    client = logged_in_client.__class__()
    client.force_login(admin.user)
    assert (
        client.post(
            reverse("workspace_delete", args=[team.slug]), {"confirm_name": "Research"}
        ).status_code
        == 403
    )
    logged_in_client.post(
        reverse("workspace_delete", args=[team.slug]), {"confirm_name": "research"}
    )
    assert Workspace.objects.filter(pk=team.pk).exists()
    logged_in_client.post(
        reverse("workspace_delete", args=[team.slug]), {"confirm_name": "Research"}
    )
    assert not Workspace.objects.filter(pk=team.pk).exists()
    assert AuditEvent.objects.filter(action="workspace.delete", target_repr="Research").exists()


def test_a_personal_workspace_cannot_be_deleted(logged_in_client, user):
    personal = Workspace.objects.get(is_personal=True, memberships__user=user)
    logged_in_client.post(
        reverse("workspace_delete", args=[personal.slug]), {"confirm_name": personal.name}
    )
    assert Workspace.objects.filter(pk=personal.pk).exists()


def test_a_viewer_cannot_open_settings_or_the_audit_log(client, team):
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER)
    client.force_login(viewer.user)
    assert client.get(reverse("workspace_members", args=[team.slug])).status_code == 200
    assert client.get(reverse("workspace_settings", args=[team.slug])).status_code == 403
    assert client.get(reverse("workspace_audit", args=[team.slug])).status_code == 403


def test_audit_log_is_visible_to_admins_and_read_only_in_the_admin_site(logged_in_client, team):
    client = logged_in_client.__class__()
    MembershipFactory(workspace=team)
    logged_in_client.post(
        reverse("invitation_create", args=[team.slug]), {"email": "a@example.com", "role": "member"}
    )
    html = logged_in_client.get(reverse("workspace_audit", args=[team.slug])).content.decode()
    assert "Invitation sent" in html
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    event = AuditEvent.objects.filter(workspace=team).first()
    assert client.get(reverse("admin:workspaces_auditevent_changelist")).status_code == 200
    assert (
        client.post(
            reverse("admin:workspaces_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "next_url", ["//example.com/", "https://example.com/", "/\\example.com/", "javascript:x"]
)
def test_switching_never_sends_the_user_to_another_site(logged_in_client, team, next_url):
    response = logged_in_client.post(
        reverse("workspace_switch"), {"workspace": team.slug, "next": next_url}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_switching_returns_to_the_page_the_user_was_on(logged_in_client, team):
    response = logged_in_client.post(
        reverse("workspace_switch"), {"workspace": team.slug, "next": "/w/?tab=1"}
    )
    assert response["Location"] == "/w/?tab=1"


def _row(html: str, email: str) -> str:
    """The table row that mentions `email`."""
    at = html.index(email)
    return html[html.rindex("<tr", 0, at) : html.index("</tr>", at)]


def test_an_admin_is_offered_only_what_their_role_may_do(client, team):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    other_admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    member = MembershipFactory(workspace=team, role=Role.MEMBER)
    client.force_login(admin.user)
    html = client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    member_row = _row(html, member.user.email)
    assert 'value="viewer"' in member_row and "Remove" in member_row
    assert 'value="admin"' not in member_row
    admin_row = _row(html, other_admin.user.email)
    assert "<select" not in admin_row and "Remove" not in admin_row
    assert "Admin" in admin_row


def test_the_owner_may_promote_and_remove_admins(logged_in_client, team):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    html = logged_in_client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    admin_row = _row(html, admin.user.email)
    assert '<option value="admin" selected' in admin_row and "Remove" in admin_row


@pytest.mark.parametrize(
    ("target_role", "url_name", "post", "message"),
    [
        (
            Role.MEMBER,
            "member_role",
            {"role": "admin"},
            "Only the owner can make someone an admin.",
        ),
        (Role.ADMIN, "member_role", {"role": "viewer"}, "Only the owner can change an admin"),
        (Role.ADMIN, "member_remove", {}, "Only the owner can remove an admin."),
    ],
)
def test_an_admin_posting_from_a_stale_page_is_told_why_nothing_changed(
    client, team, target_role, url_name, post, message
):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    target = MembershipFactory(workspace=team, role=target_role)
    client.force_login(admin.user)
    response = client.post(reverse(url_name, args=[team.slug, target.pk]), post)
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace_members", args=[team.slug])
    assert message in client.get(response["Location"]).content.decode()
    target.refresh_from_db()
    assert target.role == target_role


@pytest.mark.parametrize(
    ("url_name", "post"),
    [
        ("member_role", {"role": "viewer"}),
        ("member_remove", {}),
        ("invitation_create", {"email": "new@example.com", "role": "member"}),
        ("invitation_revoke", {}),
    ],
)
def test_a_member_demoted_while_the_page_was_open_is_sent_back_and_told(
    client, team, url_name, post
):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    target = MembershipFactory(workspace=team, role=Role.MEMBER)
    invitation = Invitation.objects.create(
        workspace=team, email="pending@example.com", token="t", expires_at=timezone.now()
    )
    client.force_login(admin.user)
    client.get(reverse("workspace_members", args=[team.slug]))
    Membership.objects.filter(pk=admin.pk).update(role=Role.MEMBER)
    args = {"invitation_revoke": [team.slug, invitation.pk], "invitation_create": [team.slug]}

    response = client.post(reverse(url_name, args=args.get(url_name, [team.slug, target.pk])), post)

    assert response.status_code == 302
    assert response["Location"] == reverse("workspace_members", args=[team.slug])
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "Your role in this workspace no longer allows that" in page.content.decode()
    target.refresh_from_db()
    invitation.refresh_from_db()
    assert target.role == Role.MEMBER and invitation.revoked_at is None
    assert Invitation.objects.count() == 1


def test_a_former_owner_transferring_again_from_an_old_page_is_told(logged_in_client, team, user):
    heir = MembershipFactory(workspace=team, role=Role.ADMIN)
    other = MembershipFactory(workspace=team, role=Role.MEMBER)
    url = reverse("workspace_transfer", args=[team.slug])
    logged_in_client.post(url, {"membership_id": heir.pk})

    response = logged_in_client.post(url, {"membership_id": other.pk})

    assert response["Location"] == reverse("workspace_members", args=[team.slug])
    page = logged_in_client.get(response["Location"]).content.decode()
    assert "Your role in this workspace no longer allows that" in page
    other.refresh_from_db()
    assert other.role == Role.MEMBER


def test_the_demoted_members_message_is_translated(client, team):
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER)
    viewer.user.language = "es"
    viewer.user.save(update_fields=["language"])
    client.force_login(viewer.user)

    response = client.post(reverse("member_remove", args=[team.slug, viewer.pk]))

    page = client.get(response["Location"]).content.decode()
    assert "Tu rol en este espacio de trabajo ya no lo permite" in page


def test_the_audit_log_names_actions_in_words_and_shows_a_role_change(logged_in_client, team, user):
    target = MembershipFactory(workspace=team, role=Role.MEMBER)
    logged_in_client.post(reverse("member_role", args=[team.slug, target.pk]), {"role": "viewer"})
    html = logged_in_client.get(reverse("workspace_audit", args=[team.slug])).content.decode()
    row = _row(html, target.user.email)
    assert "Role changed" in row and "Member → Viewer" in row
    assert ">member.role_change<" not in html

    user.language = "es"
    user.save(update_fields=["language"])
    html = logged_in_client.get(reverse("workspace_audit", args=[team.slug])).content.decode()
    row = _row(html, target.user.email)
    assert "Rol cambiado" in row and "Miembro → Lector" in row


def test_the_settings_form_speaks_the_users_language(logged_in_client, team, user):
    user.language = "es"
    user.save(update_fields=["language"])
    html = logged_in_client.get(reverse("workspace_settings", args=[team.slug])).content.decode()
    for label in ("Nombre:", "Color:", "Modelo predeterminado:", "Permitir enlaces públicos:"):
        assert label in html
    for english in ("Name:", "Default model:", "Public links enabled:"):
        assert english not in html


def test_the_audit_log_names_provider_key_changes(logged_in_client, team, user):
    from workspaces.services import audit_record

    audit_record(workspace=team, actor=user, action="credential.create", target_repr="Team key")
    html = logged_in_client.get(reverse("workspace_audit", args=[team.slug])).content.decode()
    assert "Provider key added" in _row(html, "Team key")
