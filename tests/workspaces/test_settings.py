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


def test_the_settings_page_says_how_much_room_the_workspaces_files_take(
    logged_in_client, team, user, settings
):
    from chat.services import attachment_create

    settings.WORKSPACE_FILES_MAX_BYTES = 1000
    attachment_create(workspace=team, user=user, name="notes.txt", data=b"x" * 250)
    attachment_create(
        workspace=workspace_create(owner=user, name="Other"),
        user=user,
        name="other.txt",
        data=b"y" * 400,
    )  # another workspace's room
    url = reverse("workspace_settings", args=[team.slug])
    html = logged_in_client.get(url).content.decode()
    assert "The files of this workspace's chats take 250\xa0bytes of the 1000\xa0bytes" in html
    assert 'aria-label="25%"' in html and 'width="25"' in html
    assert "New files are refused" not in html

    settings.WORKSPACE_FILES_MAX_BYTES = 250  # full: uploads are refused, and it says so
    html = logged_in_client.get(url).content.decode()
    assert 'aria-label="100%"' in html and "New files are refused until room is made" in html

    settings.WORKSPACE_FILES_MAX_BYTES = 0
    html = logged_in_client.get(url).content.decode()
    assert "take 250\xa0bytes; this server sets no limit." in html and "budget-meter" not in html
