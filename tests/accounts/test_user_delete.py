"""Deleting a user in the admin site: what goes with them, what stays, and who takes over."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing.invoices import invoices_generate
from billing.models import Invoice, UsageEvent
from billing.pricing import Cost
from billing.rollups import usage_rollup_run
from billing.selectors import top_spenders, usage_summary
from chat.models import Conversation
from tests.billing.conftest import record_call
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEvent, Membership, Role, Workspace
from workspaces.selectors import personal_workspace_get
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaver(db):
    return UserFactory(email="leaver@example.com")


def delete_in_admin(client, user):
    return client.post(reverse("admin:accounts_user_delete", args=[user.pk]), {"post": "yes"})


def test_their_personal_workspace_goes_with_them(staff_client, leaver):
    personal = personal_workspace_get(user=leaver)
    Conversation.objects.create(workspace=personal, user=leaver, title="Notes")

    response = delete_in_admin(staff_client, leaver)

    assert response.status_code == 302
    assert not User.objects.filter(pk=leaver.pk).exists()
    assert not Workspace.objects.filter(pk=personal.pk).exists()
    assert not Conversation.objects.filter(title="Notes").exists()


def test_their_usage_and_invoices_outlive_the_workspace(staff_client, leaver):
    personal = personal_workspace_get(user=leaver)
    record_call(personal, leaver, cost=Cost(Decimal("1.25"), True))
    usage_rollup_run()
    record_call(personal, leaver, cost=Cost(Decimal("0.75"), True))  # not rolled up yet
    now = timezone.now()
    invoices_generate(year=now.year, month=now.month)
    start, end = now - timezone.timedelta(days=1), now + timezone.timedelta(days=1)
    before = usage_summary(None, start, end, group_by="model")

    delete_in_admin(staff_client, leaver)

    assert UsageEvent.objects.filter(workspace=None).count() == 2
    assert usage_summary(None, start, end, group_by="model") == before
    assert top_spenders(start, end) == [
        {"workspace_id": None, "name": "Deleted workspaces", "cost": Decimal("2")}
    ]
    invoice = Invoice.objects.get(workspace_name=personal.name)
    assert invoice.workspace is None and invoice.usage_cost == Decimal("2")
    # The monthly job runs on: the deleted workspace's usage is billed to nobody.
    assert invoices_generate(year=now.year, month=now.month)["invoices"] == []


def test_a_team_they_owned_passes_to_its_longest_standing_admin(staff_client, leaver):
    team = workspace_create(owner=leaver, name="Research")
    member = MembershipFactory(workspace=team, role=Role.MEMBER)
    first_admin = MembershipFactory(workspace=team, role=Role.ADMIN)
    MembershipFactory(workspace=team, role=Role.ADMIN)
    shared = Conversation.objects.create(
        workspace=team, user=leaver, title="Findings", shared_at=timezone.now()
    )
    Conversation.objects.create(workspace=team, user=leaver, title="Private draft")

    delete_in_admin(staff_client, leaver)

    assert Workspace.objects.filter(pk=team.pk).exists()
    first_admin.refresh_from_db()
    member.refresh_from_db()
    assert first_admin.role == Role.OWNER and member.role == Role.MEMBER
    assert Membership.objects.filter(workspace=team, role=Role.OWNER).count() == 1
    shared.refresh_from_db()
    assert shared.user == first_admin.user
    assert not Conversation.objects.filter(title="Private draft").exists()
    actions = set(AuditEvent.objects.filter(workspace=team).values_list("action", flat=True))
    assert {"workspace.transfer", "member.account_delete"} <= actions


def test_without_an_admin_the_longest_standing_member_becomes_owner(staff_client, leaver):
    team = workspace_create(owner=leaver, name="Research")
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER)
    member = MembershipFactory(workspace=team, role=Role.MEMBER)

    delete_in_admin(staff_client, leaver)

    member.refresh_from_db()
    viewer.refresh_from_db()
    assert (member.role, viewer.role) == (Role.OWNER, Role.VIEWER)


def test_a_team_they_were_alone_in_goes_too_and_others_are_only_left(staff_client, leaver):
    alone = workspace_create(owner=leaver, name="Solo project")
    other = workspace_create(owner=UserFactory(), name="Someone else's")
    MembershipFactory(workspace=other, user=leaver, role=Role.ADMIN)

    delete_in_admin(staff_client, leaver)

    assert not Workspace.objects.filter(pk=alone.pk).exists()
    assert AuditEvent.objects.filter(action="workspace.delete", target_repr="Solo project").exists()
    assert Workspace.objects.filter(pk=other.pk).exists()
    assert Membership.objects.filter(workspace=other).count() == 1


def test_the_confirmation_page_lists_the_workspaces_that_go(staff_client, leaver):
    personal = personal_workspace_get(user=leaver)
    Conversation.objects.create(workspace=personal, user=leaver, title="Notes")
    workspace_create(owner=leaver, name="Solo project")
    kept = workspace_create(owner=leaver, name="Busy team")
    MembershipFactory(workspace=kept, role=Role.ADMIN)

    page = staff_client.get(reverse("admin:accounts_user_delete", args=[leaver.pk]))

    html = page.content.decode()
    assert f'Workspace: <a href="/admin/workspaces/workspace/{personal.pk}/change/">' in html
    assert "Solo project" in html
    assert f"/admin/workspaces/workspace/{kept.pk}/change/" not in html
    counts = dict(page.context["model_count"])
    assert counts["workspaces"] == 2
    assert counts["memberships"] == 3  # counted once each: the leaver's three
    assert User.objects.filter(pk=leaver.pk).exists()


def test_the_bulk_delete_action_lists_and_settles_the_same(staff_client, leaver):
    partner = UserFactory()
    shared_team = workspace_create(owner=leaver, name="Pair")
    MembershipFactory(workspace=shared_team, user=partner, role=Role.MEMBER)
    action = {"action": "delete_selected", "_selected_action": [leaver.pk, partner.pk]}

    page = staff_client.post(reverse("admin:accounts_user_changelist"), action)
    assert "Pair" in page.content.decode()
    staff_client.post(reverse("admin:accounts_user_changelist"), {**action, "post": "yes"})

    assert not User.objects.filter(pk__in=[leaver.pk, partner.pk]).exists()
    assert not Workspace.objects.filter(pk=shared_team.pk).exists()
    assert not Membership.objects.filter(user_id__in=[leaver.pk, partner.pk]).exists()


def test_the_confirmation_page_keeps_their_shared_conversations_off_the_list(staff_client, leaver):
    team = workspace_create(owner=UserFactory(), name="Busy team")
    MembershipFactory(workspace=team, user=leaver, role=Role.MEMBER)
    Conversation.objects.create(
        workspace=team, user=leaver, title="Findings", shared_at=timezone.now()
    )
    private = Conversation.objects.create(workspace=team, user=leaver, title="Private draft")

    page = staff_client.get(reverse("admin:accounts_user_delete", args=[leaver.pk]))

    html = page.content.decode()
    deleted = str(page.context["deleted_objects"])
    assert f"/admin/chat/conversation/{private.pk}/change/" in deleted
    assert "Findings" not in deleted
    assert "pass to its owner" in html and "Conversation: Findings" in html
    assert dict(page.context["model_count"])["conversations"] == 1


def test_the_bulk_confirmation_page_keeps_them_off_the_list_too(staff_client, leaver):
    team = workspace_create(owner=UserFactory(), name="Busy team")
    MembershipFactory(workspace=team, user=leaver, role=Role.MEMBER)
    Conversation.objects.create(
        workspace=team, user=leaver, title="Findings", shared_at=timezone.now()
    )
    action = {"action": "delete_selected", "_selected_action": [leaver.pk]}

    page = staff_client.post(reverse("admin:accounts_user_changelist"), action)

    assert "Findings" not in str(page.context["deletable_objects"])
    assert "Conversation: Findings" in page.content.decode()


def test_a_member_s_shared_conversation_passes_to_the_owner(staff_client, leaver):
    owner = UserFactory()
    team = workspace_create(owner=owner, name="Busy team")
    MembershipFactory(workspace=team, user=leaver, role=Role.MEMBER)
    shared = Conversation.objects.create(
        workspace=team, user=leaver, title="Findings", shared_at=timezone.now()
    )

    delete_in_admin(staff_client, leaver)

    shared.refresh_from_db()
    assert shared.user == owner
