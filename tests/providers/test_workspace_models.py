import pytest
from django.urls import reverse

from providers.models import CatalogModel, Scope, WorkspaceModelSetting
from providers.routing import candidates_resolve_sync
from providers.selectors import model_choices_for
from providers.services import catalog_refresh, credential_create
from tests.factories import MembershipFactory
from workspaces.models import AuditEvent, Role
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(fake_upstream, settings, user):
    settings.PROVIDER_TRUST_ENV = False
    credential = credential_create(
        actor=None,
        scope=Scope.GLOBAL,
        kind="openai",
        name="Global",
        api_key="sk-g",
        base_url=fake_upstream.base_url("openai"),
        allow_private_network=True,
    )
    catalog_refresh(credential.id)
    team = workspace_create(owner=user, name="Team")
    return credential, team


def test_an_admin_switches_a_model_off_for_the_workspace_only(client, user, world):
    credential, team = world
    large = CatalogModel.objects.get(credential=credential, model_id="fake-large")
    client.force_login(user)
    page = client.get(reverse("providers:workspace_keys", args=[team.slug])).content.decode()
    assert "Models this workspace may use" in page and "fake-large" in page
    response = client.post(
        reverse("providers:workspace_model_toggle", args=[team.slug, large.pk]), {"enabled": "0"}
    )
    assert response.status_code == 302
    assert WorkspaceModelSetting.objects.get(workspace=team, catalog_model=large).enabled is False
    assert AuditEvent.objects.filter(workspace=team, action="model.disable").exists()

    # The model is gone from the picker and from routing in this workspace...
    values = [c["value"] for c in model_choices_for(user=user, workspace=team)]
    assert f"{credential.id}:fake-large" not in values and f"{credential.id}:fake-small" in values
    assert candidates_resolve_sync(user=user, workspace=team, model="fake-large") == []
    assert candidates_resolve_sync(user=user, workspace=team, model="fake-small")
    # ...and still there in another workspace.
    personal = user.memberships.get(workspace__is_personal=True).workspace
    assert candidates_resolve_sync(user=user, workspace=personal, model="fake-large")

    client.post(
        reverse("providers:workspace_model_toggle", args=[team.slug, large.pk]), {"enabled": "1"}
    )
    assert candidates_resolve_sync(user=user, workspace=team, model="fake-large")


def test_a_member_cannot_switch_models(client, world):
    credential, team = world
    member = MembershipFactory(workspace=team, role=Role.MEMBER).user
    large = CatalogModel.objects.get(credential=credential, model_id="fake-large")
    client.force_login(member)
    response = client.post(
        reverse("providers:workspace_model_toggle", args=[team.slug, large.pk]), {"enabled": "0"}
    )
    assert response.status_code == 403
    assert not WorkspaceModelSetting.objects.exists()
