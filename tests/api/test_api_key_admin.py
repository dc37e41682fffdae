"""Staff edit a key's allowed models in the admin as names, not JSON."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from api.models import ApiKey
from api.services import api_key_create
from tests.factories import UserFactory
from workspaces.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(user):
    made, _raw = api_key_create(membership=Membership.objects.get(user=user), name="laptop")
    return made


def post_key(client, key, allowed_models):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client.post(
        reverse("admin:api_apikey_change", args=[key.pk]),
        {
            "workspace": key.workspace_id,
            "user": key.user_id,
            "owner": key.owner,
            "name": key.name,
            "allowed_models": allowed_models,
        },
    )


def test_allowed_models_are_typed_separated_by_commas_or_lines(client, key, user):
    response = post_key(client, key, "fake-small, gpt-4o-mini\nfast")

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.allowed_models == ["fake-small", "gpt-4o-mini", "fast"]
    client.force_login(user)
    assert "fake-small, gpt-4o-mini, fast" in client.get(reverse("api_keys")).text


def test_the_change_form_shows_the_names_as_typed(client, key):
    key.allowed_models = ["fake-small", "gpt-4o-mini"]
    key.save()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:api_apikey_change", args=[key.pk])).text

    assert "\nfake-small, gpt-4o-mini</textarea>" in page


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ('"fake-small"', ["fake-small"]),
        ('["fake-small", "fast"]', ["fake-small", "fast"]),
        ("", []),
    ],
)
def test_names_typed_as_json_are_names_all_the_same(client, key, typed, stored):
    post_key(client, key, typed)

    key.refresh_from_db()
    assert key.allowed_models == stored


def test_allowed_models_that_are_not_a_list_of_names_are_refused(key):
    key.allowed_models = "fake-small"

    with pytest.raises(ValidationError):
        key.full_clean()


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_allowed_models_saved_as_a_string_become_a_list():
    apps = _migrate([("api", "0001_initial")])
    try:
        user = apps.get_model("accounts", "User").objects.create(email="old@example.com")
        workspace = apps.get_model("workspaces", "Workspace").objects.create(name="O", slug="o")
        Key = apps.get_model("api", "ApiKey")
        spelled = Key.objects.create(
            workspace=workspace, user=user, name="a", key_hash="a", allowed_models="fake-small"
        )
        listed = Key.objects.create(
            workspace=workspace, user=user, name="b", key_hash="b", allowed_models=["m"]
        )
    finally:
        _migrate([("api", "0003_allowed_models_validated")])
        executor = MigrationExecutor(connection)
        _migrate(executor.loader.graph.leaf_nodes())

    assert ApiKey.objects.get(pk=spelled.pk).allowed_models == ["fake-small"]
    assert ApiKey.objects.get(pk=listed.pk).allowed_models == ["m"]
