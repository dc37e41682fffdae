import pytest
from django.urls import reverse

from providers.models import Scope
from tests.providers.factories import credential
from workspaces.services import workspace_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(user):
    return workspace_create(owner=user, name="Research")


def _settings(client, team, **fields):
    data = {"name": team.name, "color": team.color, "default_model": "", **fields}
    return client.post(reverse("workspace_settings", args=[team.slug]), data)


def test_the_default_model_is_picked_among_the_workspaces_models(logged_in_client, team):
    shared = credential(name="Acme", models=["fake-small"])
    own = credential(scope=Scope.WORKSPACE, workspace=team, name="Team key", models=["big"])
    html = logged_in_client.get(reverse("workspace_settings", args=[team.slug])).content.decode()
    assert f'<option value="{shared.id}:fake-small">' in html
    assert f'<option value="{own.id}:big">' in html
    assert '<option value="" selected>' in html  # no default yet

    response = _settings(logged_in_client, team, default_model=f"{own.id}:big")
    assert response.status_code == 302
    team.refresh_from_db()
    assert team.default_model == f"{own.id}:big"


def test_a_model_the_workspace_cannot_use_is_refused(logged_in_client, team, user):
    credential(name="Acme", models=["fake-small"])
    elsewhere = workspace_create(owner=user, name="Elsewhere")
    foreign = credential(scope=Scope.WORKSPACE, workspace=elsewhere, models=["theirs"])
    for model in ("gpt-4o-typo", f"{foreign.id}:theirs"):
        response = _settings(logged_in_client, team, default_model=model)
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
        team.refresh_from_db()
        assert team.default_model == ""


def test_a_saved_default_no_longer_available_is_shown_as_such_and_kept(logged_in_client, team):
    team.default_model = "retired-model"
    team.save()
    html = logged_in_client.get(reverse("workspace_settings", args=[team.slug])).content.decode()
    assert '<option value="retired-model" selected>retired-model (no longer available)' in html
    _settings(logged_in_client, team, name="Renamed", default_model="retired-model")
    team.refresh_from_db()
    assert (team.name, team.default_model) == ("Renamed", "retired-model")
