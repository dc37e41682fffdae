"""The comparison page: its model menus and who may ask from it."""

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.providers.factories import credential
from workspaces.models import Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    return credential(name="Acme", models=["fake-small", "fake-large"])


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_offers_two_models_to_start_with_the_user_s_default_first(catalog):
    user = UserFactory(default_model=f"{catalog.id}:fake-small")
    html = _client(user).get("/compare/").content.decode()
    assert 'data-ws-path="/ws/compare/"' in html
    assert html.count('class="compare-picker"') == 2
    first, second = html.split('class="compare-picker"')[1:3]
    assert f'value="{catalog.id}:fake-small" selected' in first
    assert f'value="{catalog.id}:fake-large" selected' in second
    assert 'id="compare-form"' in html and 'compare-form" hidden' not in html


def test_a_menu_of_one_model_offers_it_twice(db):
    alone = credential(name="Solo", models=["fake-small"])
    html = _client(UserFactory()).get("/compare/").content.decode()
    assert html.count('class="compare-picker"') == 2
    assert html.count(f'value="{alone.id}:fake-small" selected') == 2


def test_a_viewer_reads_why_they_cannot_ask(catalog):
    owner, viewer = UserFactory(), UserFactory()
    workspace = Membership.objects.get(user=owner).workspace
    Membership.objects.create(user=viewer, workspace=workspace, role=Role.VIEWER)
    html = _client(viewer).get(f"/compare/?workspace={workspace.slug}").content.decode()
    assert "not ask models" in html
    assert 'id="compare-form" hidden' in html


def test_without_models_the_page_says_so_and_cannot_send(db):
    html = _client(UserFactory()).get("/compare/").content.decode()
    assert "No models available" in html
    assert 'id="compare-send" class="primary" disabled' in html


def test_another_workspace_s_page_is_not_found(catalog):
    stranger, owner = UserFactory(), UserFactory()
    workspace = Membership.objects.get(user=owner).workspace
    assert _client(stranger).get(f"/compare/?workspace={workspace.slug}").status_code == 404


def test_it_asks_to_sign_in(client):
    response = client.get("/compare/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_navigation_links_to_it(db):
    assert 'href="/compare/"' in _client(UserFactory()).get("/").content.decode()
