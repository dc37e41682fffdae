import pytest
from django.urls import reverse

from prompts.models import PromptTemplate
from tests.factories import MembershipFactory, UserFactory
from workspaces.models import AuditEvent, Role
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(user):
    return workspace_create(owner=user, name="Team")


def use(client, member, workspace):
    client.force_login(member)
    session = client.session
    session["workspace_id"] = workspace.pk
    session.save()


def test_variables_are_found_and_filled():
    t = PromptTemplate(
        title="x", body="Summarise {{topic}} for {{ audience }}; {{topic}} again, {{missing}}."
    )
    assert t.variables == ["topic", "audience", "missing"]
    assert (
        t.render({"topic": "AI", "audience": "kids"})
        == "Summarise AI for kids; AI again, {{missing}}."
    )


def test_an_admin_shares_a_template_that_members_see_and_search(client, user, team):
    use(client, user, team)
    client.post(reverse("prompt_templates"), {"title": "Review", "body": "Review {{code}}"})
    template = PromptTemplate.objects.get(title="Review")
    assert template.owner is None and template.created_by == user
    assert AuditEvent.objects.filter(action="prompt_template.create").exists()
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    other = client.__class__()
    use(other, member, team)
    found = other.get(reverse("prompt_template_search"), {"q": "rev"}).json()["templates"]
    assert [(t["title"], t["variables"]) for t in found] == [("Review", ["code"])]


def test_a_members_templates_are_personal_and_invisible_to_others(client, team):
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    use(client, member, team)
    client.post(reverse("prompt_templates"), {"title": "Mine", "body": "secret {{x}}"})
    assert PromptTemplate.objects.get(title="Mine").owner == member
    colleague = MembershipFactory(workspace=team, role=Role.MEMBER).user
    other = client.__class__()
    use(other, colleague, team)
    assert other.get(reverse("prompt_template_search")).json()["templates"] == []
    mine = PromptTemplate.objects.get(title="Mine")
    assert other.get(reverse("prompt_template_edit", args=[mine.pk])).status_code == 404


def test_a_member_cannot_edit_or_delete_a_shared_template(client, user, team):
    shared = PromptTemplate.objects.create(
        workspace=team, title="Shared", body="b", created_by=user
    )
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    use(client, member, team)
    assert (
        client.post(
            reverse("prompt_template_edit", args=[shared.pk]), {"title": "Hacked", "body": "x"}
        ).status_code
        == 403
    )
    assert client.post(reverse("prompt_template_delete", args=[shared.pk])).status_code == 403
    shared.refresh_from_db()
    assert shared.title == "Shared"


def test_another_workspaces_templates_are_not_found(client, team, user):
    shared = PromptTemplate.objects.create(
        workspace=team, title="Team only", body="b", created_by=user
    )
    stranger = UserFactory()
    client.force_login(stranger)
    assert client.get(reverse("prompt_template_edit", args=[shared.pk])).status_code == 404
    assert client.get(reverse("prompt_template_search")).json()["templates"] == []


def test_a_viewer_is_not_offered_a_form_to_make_templates(client, user, team):
    PromptTemplate.objects.create(workspace=team, title="Shared", body="b", created_by=user)
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER).user
    use(client, viewer, team)
    page = client.get(reverse("prompt_templates")).content.decode()
    assert "Shared" in page
    assert "Save template" not in page and 'name="body"' not in page
    assert reverse("prompt_template_edit", args=[PromptTemplate.objects.get().pk]) not in page
    assert "Viewers can read this workspace&#x27;s templates but not create or change them." in page


def test_a_viewer_who_posts_a_template_anyway_is_told_why_and_keeps_the_text(client, team):
    viewer = MembershipFactory(workspace=team, role=Role.VIEWER).user
    use(client, viewer, team)
    response = client.post(
        reverse("prompt_templates"), {"title": "My draft", "body": "Typed with care {{x}}"}
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "but not create or change them" in page
    assert 'value="My draft"' in page and "Typed with care {{x}}</textarea>" in page
    assert not PromptTemplate.objects.exists()


def test_a_viewer_s_own_old_template_is_read_only(client, team):
    """A member demoted to viewer keeps reading the personal templates made before."""
    membership = MembershipFactory(workspace=team, role=Role.VIEWER)
    mine = PromptTemplate.objects.create(
        workspace=team, owner=membership.user, title="Old", body="b", created_by=membership.user
    )
    use(client, membership.user, team)
    assert reverse("prompt_template_edit", args=[mine.pk]) not in (
        client.get(reverse("prompt_templates")).content.decode()
    )
    response = client.post(
        reverse("prompt_template_edit", args=[mine.pk]), {"title": "New", "body": "kept text"}
    )
    assert response.status_code == 403
    assert "but not create or change them" in response.content.decode()
    assert "kept text</textarea>" in response.content.decode()
    mine.refresh_from_db()
    assert mine.title == "Old"


def test_a_member_editing_a_shared_template_is_told_only_admins_may(client, user, team):
    shared = PromptTemplate.objects.create(
        workspace=team, title="Shared", body="b", created_by=user
    )
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    use(client, member, team)
    response = client.post(
        reverse("prompt_template_edit", args=[shared.pk]), {"title": "Mine now", "body": "x"}
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert "Only workspace admins can create or change shared templates." in page
    assert 'value="Mine now"' in page


def test_shared_template_changes_are_audited_with_the_admin_s_address(client, user, team):
    use(client, user, team)
    client.post(
        reverse("prompt_templates"), {"title": "Review", "body": "b"}, REMOTE_ADDR="203.0.113.5"
    )
    template = PromptTemplate.objects.get()
    client.post(
        reverse("prompt_template_edit", args=[template.pk]),
        {"title": "Review", "body": "c"},
        REMOTE_ADDR="203.0.113.6",
    )
    client.post(reverse("prompt_template_delete", args=[template.pk]), REMOTE_ADDR="203.0.113.7")

    trail = AuditEvent.objects.filter(action__startswith="prompt_template.").order_by("id")
    assert [(e.action, e.ip) for e in trail] == [
        ("prompt_template.create", "203.0.113.5"),
        ("prompt_template.update", "203.0.113.6"),
        ("prompt_template.delete", "203.0.113.7"),
    ]
