"""The chat page's model menu: what it lists and which entry a new chat starts on."""

import re

import pytest

from providers.adapters.demo import DEMO_MODEL
from providers.models import AliasTarget, ModelAlias
from providers.routing import candidates_resolve_sync
from providers.services import demo_credential_sync
from tests.factories import MembershipFactory
from tests.providers.factories import credential
from workspaces.models import Role
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY

pytestmark = pytest.mark.django_db


def _menu(client, membership) -> list[tuple[str, bool]]:
    client.force_login(membership.user)
    session = client.session
    session[CURRENT_WORKSPACE_SESSION_KEY] = membership.workspace_id
    session.save()
    html = client.get("/").content.decode()
    select = re.search(r'<select name="model".*?</select>', html, re.S).group(0)
    return [
        (value, bool(selected))
        for value, selected in re.findall(r'<option value="([^"]*)"( selected)?[^>]*>', select)
    ]


def test_a_workspace_default_no_longer_available_is_not_offered(client):
    acme = credential(name="Acme", models=["fake-small"])
    membership = MembershipFactory(role=Role.MEMBER)
    membership.workspace.default_model = "gpt-4o-typo"
    membership.workspace.save()
    menu = _menu(client, membership)
    assert menu == [(f"{acme.id}:fake-small", False)]


def test_a_default_given_by_bare_name_starts_on_its_entry_listed_once(client):
    acme = credential(name="Acme", models=["fake-small", "fake-large"])
    membership = MembershipFactory(role=Role.MEMBER)
    membership.workspace.default_model = "fake-small"
    membership.workspace.save()
    menu = _menu(client, membership)
    assert sorted(menu) == [(f"{acme.id}:fake-large", False), (f"{acme.id}:fake-small", True)]


def test_the_users_default_wins_when_available_else_the_workspaces(client):
    acme = credential(name="Acme", models=["a", "b"])
    membership = MembershipFactory(role=Role.MEMBER)
    membership.workspace.default_model = f"{acme.id}:b"
    membership.workspace.save()
    membership.user.default_model = f"{acme.id}:a"
    membership.user.save()
    assert (f"{acme.id}:a", True) in _menu(client, membership)
    membership.user.default_model = "gone"
    membership.user.save()
    menu = _menu(client, membership)
    assert (f"{acme.id}:b", True) in menu and all(value != "gone" for value, _ in menu)


def test_the_offline_demo_is_named_once_other_models_with_their_key(client, settings):
    settings.AURAX_DEMO_PROVIDER = True
    demo = demo_credential_sync()
    acme = credential(name="Acme", models=["fake-small"])
    membership = MembershipFactory(role=Role.MEMBER)
    _menu(client, membership)

    html = client.get("/").content.decode()

    select = re.search(r'<select name="model".*?</select>', html, re.S).group(0)
    labels = dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))
    assert labels[f"{demo.id}:{DEMO_MODEL}"] == "Offline demo"
    assert labels[f"{acme.id}:fake-small"] == "fake-small (Acme)"
    [candidate] = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model=DEMO_MODEL
    )
    assert candidate.label == "Offline demo"


def test_each_entry_carries_the_temperatures_its_providers_accept(client):
    claude = credential(kind="anthropic", name="Claude", models=["claude-small"])
    acme = credential(name="Acme", models=["fake-small"])
    local = credential(kind="ollama", name="Local", models=["llama"])
    alias = ModelAlias.objects.create(name="warm")
    AliasTarget.objects.create(alias=alias, credential=claude, model_id="claude-small")
    AliasTarget.objects.create(alias=alias, credential=acme, model_id="fake-small", position=1)
    membership = MembershipFactory(role=Role.MEMBER)
    membership.user.language = "es"  # the bounds are not written "1,0"
    membership.user.save()
    _menu(client, membership)

    html = client.get("/").content.decode()

    select = re.search(r'<select name="model".*?</select>', html, re.S).group(0)
    ranges = {
        value: attributes
        for value, attributes in re.findall(r'<option value="([^"]*)"([^>]*)>', select)
    }
    assert ranges[f"{claude.id}:claude-small"].split() == [
        'data-temperature-min="0.0"',
        'data-temperature-max="1.0"',
    ]
    assert 'data-temperature-max="2.0"' in ranges[f"{acme.id}:fake-small"]
    # An alias takes what one of its providers takes, as routing falls back to it.
    assert 'data-temperature-max="2.0"' in ranges["warm"]
    assert "data-temperature" not in ranges[f"{local.id}:llama"]  # any value
    assert (
        'id="id_temperature"' in html
        and 'aria-describedby="temperature-hint temperature-error"' in html
    )
