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
