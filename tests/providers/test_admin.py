import pytest
from django.urls import reverse

from providers.circuit import circuit_failure, circuit_state
from providers.models import AliasTarget, CatalogModel, ModelAlias, ProviderCredential
from tests.factories import UserFactory

from .factories import credential

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_credential_list_shows_masked_keys_and_circuit_state(admin_client, settings):
    settings.PROVIDER_CIRCUIT_FAILURES = 1
    made = credential(name="Flaky", api_key="sk-admin-list-secret-QRST")
    circuit_failure(made.id)

    page = admin_client.get(reverse("admin:providers_providercredential_changelist"))

    assert "Flaky" in page.text and "…QRST" in page.text
    assert "open: skipped" in page.text
    assert "sk-admin-list-secret" not in page.text


def test_resetting_a_circuit_breaker_closes_it_and_says_so(admin_client, settings):
    settings.PROVIDER_CIRCUIT_FAILURES = 1
    made = credential(name="Flaky")
    circuit_failure(made.id)

    page = admin_client.post(
        reverse("admin:providers_providercredential_changelist"),
        {"action": "reset_circuit", "_selected_action": [made.id]},
        follow=True,
    )

    assert circuit_state(made.id).state == "closed"
    assert "Circuit breaker reset: Flaky takes requests again." in page.text


def test_an_admin_adds_a_global_credential_with_a_write_only_key(admin_client):
    response = admin_client.post(
        reverse("admin:providers_providercredential_add"),
        {
            "scope": "global",
            "kind": "ollama",
            "name": "Local Ollama",
            "base_url": "http://127.0.0.1:11434",
            "api_key": "ollama-proxy-token-5678",
            "enabled": "on",
        },
    )

    assert response.status_code == 302
    made = ProviderCredential.objects.get(name="Local Ollama")
    assert made.api_key == "ollama-proxy-token-5678"
    change = admin_client.get(reverse("admin:providers_providercredential_change", args=[made.id]))
    assert "ollama-proxy-token" not in change.text and "…5678" in change.text


def test_saving_without_a_key_keeps_the_stored_one(admin_client):
    made = credential(name="Keep", api_key="sk-keep-me-please-0000")

    admin_client.post(
        reverse("admin:providers_providercredential_change", args=[made.id]),
        {"scope": "global", "kind": "openai", "name": "Renamed", "api_key": "", "enabled": "on"},
    )

    made.refresh_from_db()
    assert made.name == "Renamed" and made.api_key == "sk-keep-me-please-0000"


def test_catalog_models_are_enabled_and_renamed_in_the_list(admin_client):
    made = credential(models=["gpt-4o-mini"])
    row = CatalogModel.objects.get(credential=made)

    admin_client.post(
        reverse("admin:providers_catalogmodel_changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(row.id),
            "form-0-display_name": "GPT-4o mini",
            "_save": "Save",
        },
    )

    row.refresh_from_db()
    assert (row.display_name, row.enabled) == ("GPT-4o mini", False)


def test_an_alias_is_defined_with_ordered_targets(admin_client):
    a = credential(name="A")
    b = credential(name="B")

    response = admin_client.post(
        reverse("admin:providers_modelalias_add"),
        {
            "name": "smart",
            "description": "Best available",
            "enabled": "on",
            "targets-TOTAL_FORMS": "2",
            "targets-INITIAL_FORMS": "0",
            "targets-0-position": "0",
            "targets-0-credential": str(b.id),
            "targets-0-model_id": "big",
            "targets-1-position": "1",
            "targets-1-credential": str(a.id),
            "targets-1-model_id": "small",
        },
    )

    assert response.status_code == 302
    alias = ModelAlias.objects.get(name="smart")
    assert [(t.credential_id, t.model_id) for t in alias.targets.all()] == [
        (b.id, "big"),
        (a.id, "small"),
    ]
    listing = admin_client.get(reverse("admin:providers_modelalias_changelist"))
    assert "B:big → A:small" in listing.text
    assert AliasTarget.objects.count() == 2


def test_a_catalog_model_price_cannot_be_negative(admin_client):
    row = CatalogModel.objects.create(credential=credential(name="Priced"), model_id="m")

    response = admin_client.post(
        reverse("admin:providers_catalogmodel_change", args=[row.id]),
        {"display_name": "", "enabled": "on", "input_price_per_mtok": "-1"},
    )

    assert "Ensure this value is greater than or equal to 0." in response.text
    row.refresh_from_db()
    assert row.input_price_per_mtok is None


def add_credential(client, **fields):
    values = {"scope": "global", "kind": "ollama", "name": "Made", "enabled": "on"}
    values.update(fields)
    return client.post(reverse("admin:providers_providercredential_add"), values)


def errors_of(response) -> dict:
    return {k: " ".join(v) for k, v in response.context["adminform"].form.errors.items()}


def test_a_personal_credential_without_its_user_is_refused_in_words(admin_client):
    response = add_credential(admin_client, scope="user", kind="openai", api_key="sk-0123456789")

    assert errors_of(response) == {"user": "A personal credential needs the user it belongs to."}
    assert not ProviderCredential.objects.exists()


def test_a_global_credential_names_no_owner(admin_client):
    response = add_credential(admin_client, user=UserFactory().id)

    assert errors_of(response) == {"user": "Only a personal credential belongs to a user."}


def test_a_provider_that_needs_a_key_is_refused_without_one(admin_client):
    response = add_credential(admin_client, kind="openai", api_key="")

    assert errors_of(response) == {"api_key": "This provider needs an API key."}
    assert not ProviderCredential.objects.exists()


def test_the_credential_form_labels_are_capitalised(admin_client):
    page = admin_client.get(reverse("admin:providers_providercredential_add")).text

    assert ">Base URL:</label>" in page and "base URL:" not in page
