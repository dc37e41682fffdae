from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEvent, Invitation, Membership, Role
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(user):
    return workspace_create(owner=user, name="Research")


def invite(client, team, email, role="member"):
    return client.post(
        reverse("invitation_create", args=[team.slug]), {"email": email, "role": role}
    )


def test_an_admin_invites_by_email_and_the_link_works_once(
    logged_in_client, team, django_capture_on_commit_callbacks
):
    client = logged_in_client
    with django_capture_on_commit_callbacks(execute=True):
        invite(logged_in_client, team, "new@example.com", "viewer")
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.expires_at - timezone.now() > timedelta(days=6, hours=23)
    assert reverse("invitation_accept", args=[invitation.token]) in mail.outbox[-1].body

    newcomer = UserFactory(email="new@example.com")
    other = client.__class__()
    other.force_login(newcomer)
    url = reverse("invitation_accept", args=[invitation.token])
    assert "Accept invitation" in other.get(url).content.decode()
    assert other.post(url).status_code == 302
    assert Membership.objects.get(workspace=team, user=newcomer).role == Role.VIEWER
    assert AuditEvent.objects.filter(workspace=team, action="invitation.accept").exists()

    # Reused: a second person with the link cannot use it.
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None
    intruder = UserFactory(email="someone@example.com")
    third = client.__class__()
    third.force_login(intruder)
    third.post(url)
    assert not Membership.objects.filter(workspace=team, user=intruder).exists()


def test_an_anonymous_visitor_is_sent_to_sign_up_then_back(client, team, user):
    invitation = _make(team, user, "fresh@example.com")
    response = client.get(reverse("invitation_accept", args=[invitation.token]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_signup"))
    assert "next=" in response["Location"]

    # The sign-up form comes with the invited address filled in; signing up leads back to the
    # invitation, which the new account can accept.
    page = client.get(response["Location"])
    assert 'value="fresh@example.com"' in page.content.decode()
    form = {
        "email": "fresh@example.com",
        "password1": "a-long-Passphrase-9",
        "password2": "a-long-Passphrase-9",
        "next": reverse("invitation_accept", args=[invitation.token]),
    }
    signed_up = client.post(response["Location"], form)
    assert signed_up.status_code == 302
    assert signed_up["Location"] == reverse("invitation_accept", args=[invitation.token])
    assert client.post(signed_up["Location"]).status_code == 302
    assert Membership.objects.filter(workspace=team, user__email="fresh@example.com").exists()


def test_an_anonymous_visitor_with_an_account_is_sent_to_sign_in(client, team, user):
    UserFactory(email="known@example.com")
    invitation = _make(team, user, "known@example.com")
    response = client.get(reverse("invitation_accept", args=[invitation.token]))
    assert response["Location"].startswith(reverse("account_login") + "?next=")


def _make(team, inviter, email, **fields):
    defaults = dict(
        role=Role.MEMBER, token=f"tok-{email}", expires_at=timezone.now() + timedelta(days=7)
    )
    defaults.update(fields)
    return Invitation.objects.create(workspace=team, email=email, invited_by=inviter, **defaults)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
        ({"revoked_at": timezone.now()}, "revoked"),
        ({"accepted_at": timezone.now()}, "already been used"),
    ],
)
def test_expired_revoked_or_used_invitations_are_refused(client, team, user, fields, message):
    guest = UserFactory(email="guest@example.com")
    invitation = _make(team, user, "guest@example.com", **fields)
    client.force_login(guest)
    url = reverse("invitation_accept", args=[invitation.token])
    assert message in client.get(url).content.decode()
    client.post(url)
    assert not Membership.objects.filter(workspace=team, user=guest).exists()


def test_an_invitation_for_another_email_is_refused(client, team, user):
    invitation = _make(team, user, "right@example.com")
    wrong = UserFactory(email="wrong@example.com")
    client.force_login(wrong)
    url = reverse("invitation_accept", args=[invitation.token])
    assert "right@example.com" in client.get(url).content.decode()
    client.post(url)
    assert not Membership.objects.filter(workspace=team, user=wrong).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_an_invitation_accepted_by_an_existing_member_changes_nothing(client, team, user):
    member = MembershipFactory(workspace=team, role=Role.VIEWER).user
    invitation = _make(team, user, member.email, role=Role.ADMIN)
    client.force_login(member)
    url = reverse("invitation_accept", args=[invitation.token])
    assert "already a member" in client.get(url).content.decode()
    client.post(url)
    assert Membership.objects.get(workspace=team, user=member).role == Role.VIEWER


def test_inviting_an_existing_member_is_refused_with_a_message(logged_in_client, team):
    member = MembershipFactory(workspace=team).user
    response = invite(logged_in_client, team, member.email)
    assert not Invitation.objects.filter(email=member.email).exists()
    assert "already a member" in logged_in_client.get(response["Location"]).content.decode()


def test_admins_see_and_revoke_pending_invitations(logged_in_client, team, user):
    invitation = _make(team, user, "pending@example.com")
    assert (
        "pending@example.com"
        in logged_in_client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    )
    logged_in_client.post(reverse("invitation_revoke", args=[team.slug, invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert (
        "pending@example.com"
        not in logged_in_client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    )


def test_members_and_viewers_cannot_invite(client, team):
    for role in (Role.MEMBER, Role.VIEWER):
        member = MembershipFactory(workspace=team, role=role).user
        client.force_login(member)
        response = invite(client, team, f"x-{role}@example.com")
        assert response["Location"] == reverse("workspace_members", args=[team.slug])
        assert "no longer allows that" in client.get(response["Location"]).content.decode()
    assert not Invitation.objects.exists()


def test_an_admin_cannot_invite_an_admin_only_the_owner_can(client, team):
    admin = MembershipFactory(workspace=team, role=Role.ADMIN).user
    client.force_login(admin)
    page = client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    assert 'value="member"' in page and 'value="admin"' not in page
    # Posted anyway, from a page older than their role: back to the page, told why.
    response = invite(client, team, "boss@example.com", "admin")
    assert response["Location"] == reverse("workspace_members", args=[team.slug])
    assert (
        "Only the owner can invite an admin." in client.get(response["Location"]).content.decode()
    )
    assert invite(client, team, "helper@example.com", "member").status_code == 302
    assert list(Invitation.objects.values_list("email", flat=True)) == ["helper@example.com"]


def test_the_owner_is_offered_the_admin_role_to_invite(logged_in_client, team):
    page = logged_in_client.get(reverse("workspace_members", args=[team.slug])).content.decode()
    assert '<option value="admin"' in page


def test_inviting_an_address_with_a_pending_invitation_is_refused_with_a_message(
    logged_in_client, team, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(logged_in_client, team, "twice@example.com")
        response = invite(logged_in_client, team, "Twice@Example.com")
    assert Invitation.objects.filter(email="twice@example.com").count() == 1
    assert len(mail.outbox) == 1
    page = logged_in_client.get(response["Location"]).content.decode()
    assert "twice@example.com has already been invited" in page
    assert "revoke the pending one first" in page
    assert page.count("<td>twice@example.com</td>") == 1


def test_an_address_can_be_invited_again_once_its_invitation_is_revoked_or_expired(
    logged_in_client, team, user
):
    _make(team, user, "revoked@example.com", revoked_at=timezone.now())
    _make(team, user, "expired@example.com", expires_at=timezone.now() - timedelta(minutes=1))
    invite(logged_in_client, team, "revoked@example.com")
    invite(logged_in_client, team, "expired@example.com")
    assert Invitation.objects.filter(email="revoked@example.com").count() == 2
    assert Invitation.objects.filter(email="expired@example.com").count() == 2


def _invitation_email(client, team, email, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invite(client, team, email)
    return mail.outbox[-1]


def test_the_invitation_email_speaks_the_recipients_language_not_the_inviters(
    logged_in_client, team, user, django_capture_on_commit_callbacks
):
    user.language = "pt-br"
    user.save(update_fields=["language"])
    UserFactory(email="lucia@example.com", language="es")
    message = _invitation_email(
        logged_in_client, team, "lucia@example.com", django_capture_on_commit_callbacks
    )
    assert message.subject == "Te han invitado a Research en AURAX"
    assert "Acepta la invitación" in message.body

    # No account yet: the site's language.
    message = _invitation_email(
        logged_in_client, team, "newcomer@example.com", django_capture_on_commit_callbacks
    )
    assert message.subject == "You are invited to Research on AURAX"
    assert "Accept the invitation" in message.body


def test_the_invitation_email_gives_the_expiry_with_its_time_zone(
    logged_in_client, team, django_capture_on_commit_callbacks, settings
):
    settings.TIME_ZONE = "UTC"
    message = _invitation_email(
        logged_in_client, team, "when@example.com", django_capture_on_commit_callbacks
    )
    expires = Invitation.objects.get(email="when@example.com").expires_at
    line = next(line for line in message.body.splitlines() if "expires" in line)
    assert f"{expires:%Y}" in line and line.endswith(" UTC.")
    assert ".." not in line
