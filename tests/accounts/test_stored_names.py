"""The offline demo's key and model are stored as "Offline demo" and shown in the reader's
language wherever the product names them; lookups keep using the stored name."""

import re

import pytest
from django.urls import reverse

from providers.adapters.demo import DEMO_MODEL
from providers.models import ProviderCredential
from providers.services import demo_credential_sync
from tests.factories import MembershipFactory
from tests.providers.factories import credential
from workspaces.models import Role
from workspaces.selectors import CURRENT_WORKSPACE_SESSION_KEY

pytestmark = pytest.mark.django_db

TRANSLATED = {"es": "Demo sin conexión", "pt-br": "Demonstração offline"}


@pytest.fixture
def demo(settings):
    settings.AURAX_DEMO_PROVIDER = True
    return demo_credential_sync()


def signed_in(client, membership, language):
    membership.user.language = language
    membership.user.save(update_fields=["language"])
    client.force_login(membership.user)
    session = client.session
    session[CURRENT_WORKSPACE_SESSION_KEY] = membership.workspace_id
    session.save()
    return client


def options(html: str, name: str) -> dict[str, str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S).group(0)
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))


@pytest.mark.parametrize("language", ["es", "pt-br"])
def test_the_chat_model_menu_names_the_demo_in_the_readers_language(client, demo, language):
    acme = credential(name="Offline team", models=["fake-small"])
    membership = MembershipFactory(role=Role.MEMBER)

    html = signed_in(client, membership, language).get("/").content.decode()

    labels = options(html, "model")
    assert labels[f"{demo.id}:{DEMO_MODEL}"] == TRANSLATED[language]
    assert labels[f"{acme.id}:fake-small"] == "fake-small (Offline team)"  # typed: as typed
    assert ProviderCredential.objects.get(pk=demo.pk).name == "Offline demo"


def test_english_readers_see_the_stored_name(client, demo):
    membership = MembershipFactory(role=Role.MEMBER)

    html = signed_in(client, membership, "en").get("/").content.decode()

    assert options(html, "model")[f"{demo.id}:{DEMO_MODEL}"] == "Offline demo"


def test_the_workspace_keys_page_names_the_demo_key_and_model_translated(client, demo):
    membership = MembershipFactory(role=Role.ADMIN)
    url = reverse("providers:workspace_keys", args=[membership.workspace.slug])

    html = signed_in(client, membership, "es").get(url).content.decode()

    assert "Demo sin conexión" in html
    assert "Offline demo" not in html


def test_default_model_menus_name_the_demo_translated(client, demo):
    membership = MembershipFactory(role=Role.OWNER)
    signed_in(client, membership, "pt-br")
    value = f"{demo.id}:{DEMO_MODEL}"

    preferences = client.get(reverse("preferences")).content.decode()
    settings_page = client.get(
        reverse("workspace_settings", args=[membership.workspace.slug])
    ).content.decode()

    assert options(preferences, "default_model")[value] == "Demonstração offline"
    assert options(settings_page, "default_model")[value] == "Demonstração offline"


def test_the_demo_key_is_still_found_by_its_stored_name(demo):
    from django.utils import translation

    with translation.override("es"):
        assert demo_credential_sync().pk == demo.pk
    assert ProviderCredential.objects.filter(name="Offline demo").count() == 1
