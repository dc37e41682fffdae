import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from providers.models import ProviderCredential, Scope
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from workspaces.models import AuditEvent, Role

from .factories import credential

pytestmark = pytest.mark.django_db

SECRET = "sk-proj-DoNotShowMe-abcdefghij-WXYZ"


def test_the_nav_links_to_the_keys_page(logged_in_client):
    response = logged_in_client.get(reverse("providers:keys"))

    assert response.status_code == 200
    assert f'href="{reverse("providers:keys")}"' in response.text
    assert "API keys &amp; providers</a>" in response.text.replace(" & ", " &amp; ")


def test_a_user_adds_a_key_and_sees_only_its_last_4(client, user):
    client.force_login(user)

    response = client.post(
        reverse("providers:keys"),
        {"kind": "openai", "name": "My OpenAI", "api_key": SECRET, "base_url": ""},
        follow=True,
    )

    made = ProviderCredential.objects.get(user=user)
    assert made.scope == Scope.USER and made.api_key == SECRET
    assert "My OpenAI" in response.text
    assert "WXYZ" in response.text
    assert "DoNotShowMe" not in response.text


def test_a_user_cannot_point_a_key_at_loopback_from_the_page(client, user):
    client.force_login(user)

    response = client.post(
        reverse("providers:keys"),
        {
            "kind": "openai_compatible",
            "name": "Sneaky",
            "api_key": "sk-123456789",
            "base_url": "http://127.0.0.1:6379/",
        },
    )

    assert response.status_code == 200
    assert "private or local network" in response.text
    assert not ProviderCredential.objects.exists()


def test_the_allow_private_network_box_is_only_offered_to_admins(client, user):
    client.force_login(user)
    assert "allow_private_network" not in client.get(reverse("providers:keys")).text

    client.force_login(UserFactory(is_staff=True))
    assert "allow_private_network" in client.get(reverse("providers:keys")).text


def test_a_workspace_admin_adds_a_workspace_key(client):
    membership = MembershipFactory(role=Role.ADMIN)
    client.force_login(membership.user)

    response = client.post(
        reverse("providers:workspace_keys", args=[membership.workspace.slug]),
        {"kind": "anthropic", "name": "Team Claude", "api_key": SECRET},
        follow=True,
    )

    made = ProviderCredential.objects.get()
    assert made.scope == Scope.WORKSPACE and made.workspace == membership.workspace
    assert "Team Claude" in response.text and "DoNotShowMe" not in response.text


def test_a_member_cannot_add_workspace_keys(client):
    membership = MembershipFactory(role=Role.MEMBER)
    client.force_login(membership.user)
    url = reverse("providers:workspace_keys", args=[membership.workspace.slug])

    page = client.get(url)
    response = client.post(url, {"kind": "anthropic", "name": "Mine", "api_key": SECRET})

    assert page.status_code == 200 and 'name="api_key"' not in page.text
    assert response.status_code == 403
    assert not ProviderCredential.objects.exists()


def test_a_member_cannot_test_or_delete_a_workspace_key(client):
    membership = MembershipFactory(role=Role.MEMBER)
    made = credential(scope=Scope.WORKSPACE, workspace=membership.workspace)
    client.force_login(membership.user)

    assert client.post(reverse("providers:credential_delete", args=[made.id])).status_code == 403
    assert client.post(reverse("providers:credential_test", args=[made.id])).status_code == 403
    assert ProviderCredential.objects.filter(id=made.id).exists()


def test_another_workspaces_keys_are_404(client):
    membership = MembershipFactory(role=Role.OWNER)
    foreign = WorkspaceFactory()
    made = credential(scope=Scope.WORKSPACE, workspace=foreign)
    client.force_login(membership.user)

    assert client.get(reverse("providers:workspace_keys", args=[foreign.slug])).status_code == 404
    assert client.post(reverse("providers:credential_test", args=[made.id])).status_code == 404
    assert client.post(reverse("providers:credential_delete", args=[made.id])).status_code == 404
    assert ProviderCredential.objects.filter(id=made.id).exists()


def test_someone_elses_personal_key_is_404(client, user):
    made = credential(scope=Scope.USER, user=UserFactory())
    client.force_login(user)

    assert client.post(reverse("providers:credential_delete", args=[made.id])).status_code == 404
    assert ProviderCredential.objects.filter(id=made.id).exists()


def test_the_owner_deletes_their_key(client, user):
    made = credential(scope=Scope.USER, user=user)
    client.force_login(user)

    client.post(reverse("providers:credential_delete", args=[made.id]))

    assert not ProviderCredential.objects.filter(id=made.id).exists()


def test_test_connection_reports_the_taxonomy_message(client, user, fake_upstream):
    good = credential(scope=Scope.USER, user=user, base_url=fake_upstream.base_url("openai"))
    bad = credential(
        scope=Scope.USER,
        user=user,
        base_url=fake_upstream.base_url("openai"),
        api_key="sk-invalid-9999",
    )
    client.force_login(user)

    ok = client.post(reverse("providers:credential_test", args=[good.id]), HTTP_HX_REQUEST="true")
    refused = client.post(
        reverse("providers:credential_test", args=[bad.id]), HTTP_HX_REQUEST="true"
    )

    assert "3 models available" in ok.text
    assert "The provider rejected the API key." in refused.text
    assert "sk-invalid-9999" not in refused.text


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "Connected: 1 model available."),
        ("es", "Conectado: 1 modelo disponible."),
        ("pt-br", "Conectado: 1 modelo disponível."),
    ],
)
async def test_a_provider_with_one_model_says_model_in_the_singular(language, said):
    from django.utils import translation

    from providers.services import credential_probe
    from providers.types import Target

    with translation.override(language):
        report = await credential_probe(Target(kind="demo", base_url=""))

    assert report.ok and report.message == said


def test_refresh_models_stores_the_catalog_with_known_prices(client, user, fake_upstream):
    made = credential(scope=Scope.USER, user=user, base_url=fake_upstream.base_url("openai"))
    client.force_login(user)

    client.post(reverse("providers:credential_refresh", args=[made.id]))

    models = {m.model_id: m for m in made.catalog_models.all()}
    assert set(models) == {"fake-small", "fake-large", "gpt-4o-mini"}
    assert models["gpt-4o-mini"].input_price_per_mtok is not None
    assert models["gpt-4o-mini"].context_window == 128000
    assert models["fake-small"].input_price_per_mtok is None


def test_a_workspace_admin_switches_a_global_provider_off(client):
    membership = MembershipFactory(role=Role.ADMIN)
    made = credential(name="Company OpenAI")
    client.force_login(membership.user)
    url = reverse("providers:workspace_global_toggle", args=[membership.workspace.slug, made.id])

    client.post(url, {"enabled": "0"})

    page = client.get(reverse("providers:workspace_keys", args=[membership.workspace.slug]))
    assert "Switched off" in page.text
    assert made.workspace_settings.get().enabled is False


def audit_trail(workspace):
    return [
        (e.action, e.actor_email, e.target_repr, e.ip)
        for e in AuditEvent.objects.filter(workspace=workspace).order_by("id")
    ]


def test_adding_and_deleting_a_workspace_key_is_in_the_audit_log(client):
    membership = MembershipFactory(role=Role.ADMIN)
    client.force_login(membership.user)
    client.post(
        reverse("providers:workspace_keys", args=[membership.workspace.slug]),
        {"kind": "anthropic", "name": "Team Claude", "api_key": SECRET},
        REMOTE_ADDR="198.51.100.7",
    )
    made = ProviderCredential.objects.get()

    client.post(reverse("providers:credential_delete", args=[made.id]), REMOTE_ADDR="198.51.100.8")

    email = membership.user.email
    assert audit_trail(membership.workspace) == [
        ("credential.create", email, "Team Claude", "198.51.100.7"),
        ("credential.delete", email, "Team Claude", "198.51.100.8"),
    ]
    assert not any(SECRET[-12:] in str(e.data) for e in AuditEvent.objects.all())


def test_a_personal_key_stays_out_of_workspace_audit_logs(client, user):
    client.force_login(user)
    client.post(
        reverse("providers:keys"),
        {"kind": "openai", "name": "My OpenAI", "api_key": SECRET, "base_url": ""},
    )
    client.post(reverse("providers:credential_delete", args=[ProviderCredential.objects.get().id]))

    assert not AuditEvent.objects.filter(action__startswith="credential.").exists()


def test_switching_an_offered_provider_off_and_on_is_in_the_audit_log(client):
    membership = MembershipFactory(role=Role.ADMIN)
    made = credential(name="Company OpenAI")
    client.force_login(membership.user)
    url = reverse("providers:workspace_global_toggle", args=[membership.workspace.slug, made.id])

    client.post(url, {"enabled": "0"}, REMOTE_ADDR="198.51.100.9")
    client.post(url, {"enabled": "1"}, REMOTE_ADDR="198.51.100.9")

    email = membership.user.email
    assert audit_trail(membership.workspace) == [
        ("credential.disable", email, "Company OpenAI", "198.51.100.9"),
        ("credential.enable", email, "Company OpenAI", "198.51.100.9"),
    ]


def test_switching_a_model_off_records_the_admin_s_address(client):
    membership = MembershipFactory(role=Role.ADMIN)
    made = credential(name="Company OpenAI", models=["m"])
    client.force_login(membership.user)
    url = reverse(
        "providers:workspace_model_toggle",
        args=[membership.workspace.slug, made.catalog_models.get().id],
    )

    client.post(url, {"enabled": "0"}, REMOTE_ADDR="198.51.100.10")

    assert audit_trail(membership.workspace) == [
        ("model.disable", membership.user.email, "m", "198.51.100.10")
    ]


def test_the_keys_page_says_whether_each_saved_key_works(
    client, settings, fake_upstream, monkeypatch, django_capture_on_commit_callbacks
):
    """A key is checked once saved (its models are listed in the background); the page then
    says what that found, so a refused key shows without pressing "Test connection"."""
    from providers import tasks

    admin = UserFactory(is_staff=True)  # may point a key at the fake upstream on loopback
    client.force_login(admin)
    monkeypatch.setattr(tasks.catalog_refresh_one, "delay", tasks.catalog_refresh_one)
    for name, key in (("Good", "sk-good-1111"), ("Refused", "sk-invalid-2222")):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("providers:keys"),
                {
                    "kind": "openai",
                    "name": name,
                    "api_key": key,
                    "base_url": fake_upstream.base_url("openai"),
                    "allow_private_network": "on",
                },
            )
    credential(scope=Scope.USER, user=admin, name="Unchecked")  # refresh never ran
    earlier = credential(scope=Scope.USER, user=admin, name="Earlier")
    ProviderCredential.objects.filter(pk=earlier.pk).update(
        last_checked_at=timezone.now() - timedelta(hours=3, minutes=5)
    )

    page = client.get(reverse("providers:keys")).text

    rows = {
        name: page[page.index(f"<td>{name}") :].split("</tr>")[0]
        for name in ("Good", "Refused", "Unchecked", "Earlier")
    }
    # Checked a moment ago reads as such (not "0 minutes ago").
    assert re.search(r"checked (now|a second ago|\d+ seconds ago)<", rows["Good"])
    assert "Working" in rows["Good"] and "minutes" not in rows["Good"]
    assert "checked 3\xa0hours ago" in rows["Earlier"]
    assert "The provider rejected the API key." in rows["Refused"]
    assert "Working" not in rows["Refused"] and "2222" in rows["Refused"]
    assert "Not checked yet" in rows["Unchecked"]
    assert ProviderCredential.objects.get(name="Good").catalog_models.count() == 3


@pytest.mark.parametrize(
    ("language", "label"),
    [
        ("en", "OpenAI-compatible (custom URL)"),
        ("es", "Compatible con OpenAI (URL propia)"),
        ("pt-br", "Compatível com OpenAI (URL própria)"),
    ],
)
def test_the_custom_url_provider_is_named_in_the_user_s_language(client, user, language, label):
    credential(scope=Scope.USER, user=user, kind="openai_compatible", base_url="http://vllm/v1")
    client.force_login(user)
    client.post(reverse("language_set"), {"language": language, "next": "/"})

    page = client.get(reverse("providers:keys")).text
    assert f'<option value="openai_compatible">{label}</option>' in page  # the form's choice
    assert f"<td>{label}</td>" in page  # the saved key's provider


def test_a_provider_refusing_connections_reads_the_same_in_the_test_and_the_table(
    client, user, unused_tcp_port
):
    made = credential(
        scope=Scope.USER, user=user, base_url=f"http://127.0.0.1:{unused_tcp_port}/v1"
    )
    ProviderCredential.objects.filter(pk=made.pk).update(
        allow_private_network=True,
        last_status="ok",
        last_checked_at=timezone.now() - timedelta(hours=2),
    )
    client.force_login(user)

    tested = client.post(
        reverse("providers:credential_test", args=[made.id]), HTTP_HX_REQUEST="true"
    ).text
    page = client.get(reverse("providers:keys")).text
    row = page[page.index(f'id="credential-{made.pk}"') :].split("</tr>")[0]

    assert "✗ Could not connect to the provider." in tested
    assert "Could not connect to the provider." in row
    assert "The model provider returned an error." not in row
    # The answer also replaces the row's status cell: no stale "Working · checked 2 hours ago".
    cell = tested[tested.index("<template>") :]
    assert f'id="credential-status-{made.pk}" hx-swap-oob="true"' in cell
    assert "Could not connect to the provider." in cell and "hours" not in cell


def test_refresh_models_updates_the_rows_status_too(client, user, fake_upstream):
    made = credential(scope=Scope.USER, user=user, base_url=fake_upstream.base_url("openai"))
    client.force_login(user)

    answer = client.post(
        reverse("providers:credential_refresh", args=[made.id]), HTTP_HX_REQUEST="true"
    ).text

    cell = answer[answer.index("<template>") :]
    assert f'id="credential-status-{made.pk}" hx-swap-oob="true"' in cell
    assert "Working" in cell


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "Catalog refreshed: 1 model."),
        ("es", "Catálogo actualizado: 1 modelo."),
        ("pt-br", "Catálogo atualizado: 1 modelo."),
    ],
)
def test_a_refreshed_catalog_of_one_model_says_model_in_the_singular(language, said):
    from django.utils import translation

    from providers.services import catalog_refresh

    made = credential(scope=Scope.GLOBAL, kind="demo", base_url="")
    with translation.override(language):
        report = catalog_refresh(made.id)

    assert report.ok and report.message == said


def test_an_invalid_base_url_is_not_also_said_to_be_missing(client, user):
    client.force_login(user)

    page = client.post(
        reverse("providers:keys"),
        {
            "kind": "openai_compatible",
            "name": "Local",
            "api_key": "sk-1",
            "base_url": "http://127.1:8970/v1",
        },
    ).text

    assert "Enter a valid URL." in page
    assert "This provider needs a base URL." not in page
