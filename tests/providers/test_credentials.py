import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection, connections

from providers.circuit import circuit_failure
from providers.models import ModelAlias, ProviderCredential, Scope
from providers.routing import candidates_resolve, candidates_resolve_sync
from providers.selectors import model_choices_for
from providers.services import (
    credential_create,
    credential_update,
    workspace_credential_toggle,
)
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

from .factories import credential

pytestmark = pytest.mark.django_db


def raw_key_column(credential_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted FROM providers_providercredential WHERE id = %s",
            [credential_id],
        )
        return cursor.fetchone()[0]


def test_the_api_key_is_encrypted_at_rest():
    made = credential(api_key="sk-live-SUPERSECRET-9876")

    raw = raw_key_column(made.id)
    assert "SUPERSECRET" not in raw
    assert ProviderCredential.objects.get(id=made.id).api_key == "sk-live-SUPERSECRET-9876"
    assert made.api_key_last4 == "9876"


def test_rotation_re_encrypts_every_key_under_the_first_key(settings):
    from cryptography.fernet import Fernet

    old_key = settings.AURAX_ENCRYPTION_KEYS[0]
    made = credential(api_key="sk-rotate-me-1234")
    before = raw_key_column(made.id)
    new_key = Fernet.generate_key().decode()
    settings.AURAX_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("rotate_encryption_keys", verbosity=0)

    after = raw_key_column(made.id)
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode()) == b"sk-rotate-me-1234"
    settings.AURAX_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert ProviderCredential.objects.get(id=made.id).api_key == "sk-rotate-me-1234"


def test_credentials_come_in_precedence_user_then_workspace_then_global():
    membership = MembershipFactory()
    user, workspace = membership.user, membership.workspace
    global_cred = credential(models=["gpt-4o-mini"])
    workspace_cred = credential(scope=Scope.WORKSPACE, workspace=workspace, models=["gpt-4o-mini"])
    user_cred = credential(scope=Scope.USER, user=user, models=["gpt-4o-mini"])

    candidates = candidates_resolve_sync(user=user, workspace=workspace, model="gpt-4o-mini")

    assert [c.credential_id for c in candidates] == [
        user_cred.id,
        workspace_cred.id,
        global_cred.id,
    ]


def test_other_peoples_and_other_workspaces_credentials_are_never_candidates():
    membership = MembershipFactory()
    stranger = UserFactory()
    credential(scope=Scope.USER, user=stranger, models=["m"])
    credential(scope=Scope.WORKSPACE, workspace=WorkspaceFactory(), models=["m"])

    assert (
        candidates_resolve_sync(user=membership.user, workspace=membership.workspace, model="m")
        == []
    )


def test_a_workspace_can_switch_a_global_credential_off():
    membership = MembershipFactory()
    global_cred = credential(models=["m"])
    other_workspace = MembershipFactory(user=membership.user).workspace

    workspace_credential_toggle(
        workspace=membership.workspace, credential=global_cred, enabled=False
    )

    assert (
        candidates_resolve_sync(user=membership.user, workspace=membership.workspace, model="m")
        == []
    )
    assert (
        len(candidates_resolve_sync(user=membership.user, workspace=other_workspace, model="m"))
        == 1
    )


def test_an_explicit_credential_and_model_resolve_to_that_one():
    membership = MembershipFactory()
    first = credential(models=["m"])
    second = credential(models=["m"])

    candidates = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model=f"{second.id}:m"
    )

    assert [(c.credential_id, c.model_id) for c in candidates] == [(second.id, "m")]
    assert first.id != second.id


def test_an_alias_resolves_to_its_targets_in_order_and_a_workspace_alias_wins():
    membership = MembershipFactory()
    a = credential(models=["small"])
    b = credential(kind="anthropic", models=["big"])
    smart = ModelAlias.objects.create(name="smart")
    smart.targets.create(credential=b, model_id="big", position=0)
    smart.targets.create(credential=a, model_id="small", position=1)

    candidates = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model="smart"
    )
    assert [(c.kind, c.model_id) for c in candidates] == [("anthropic", "big"), ("openai", "small")]

    mine = ModelAlias.objects.create(name="smart", workspace=membership.workspace)
    mine.targets.create(credential=a, model_id="small", position=0)
    candidates = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model="smart"
    )
    assert [c.model_id for c in candidates] == ["small"]


def test_disabled_models_and_open_circuits_are_skipped(settings):
    settings.PROVIDER_CIRCUIT_FAILURES = 1
    membership = MembershipFactory()
    broken = credential(models=["m"])
    healthy = credential(models=["m"])
    disabled = credential(models=["m"])
    disabled.catalog_models.update(enabled=False)
    circuit_failure(broken.id)

    candidates = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model="m"
    )

    assert [c.credential_id for c in candidates] == [healthy.id]


@pytest.mark.django_db(transaction=True)
async def test_candidates_resolve_works_from_async_code():
    from asgiref.sync import sync_to_async

    membership = await sync_to_async(MembershipFactory)()
    made = await sync_to_async(credential)(models=["m"])

    candidates = await candidates_resolve(
        user=membership.user, workspace=membership.workspace, model="m"
    )

    assert [c.credential_id for c in candidates] == [made.id]
    assert candidates[0].target.api_key == "sk-test-key-1234"
    assert "sk-test-key-1234" not in repr(candidates[0])
    await sync_to_async(connections.close_all)()  # the ORM thread's, before DB teardown


def test_model_choices_list_aliases_first_then_models():
    membership = MembershipFactory()
    made = credential(name="Team OpenAI", models=["gpt-4o-mini"])
    alias = ModelAlias.objects.create(name="fast", description="Fast and cheap")
    alias.targets.create(credential=made, model_id="gpt-4o-mini")

    choices = model_choices_for(user=membership.user, workspace=membership.workspace)

    assert choices[0] == {
        "value": "fast",
        "label": "Fast and cheap",
        "group": "aliases",
        "temperature_range": (0.0, 2.0),
    }
    assert choices[1]["value"] == f"{made.id}:gpt-4o-mini"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://10.1.2.3/v1",
        "http://169.254.169.254/",
        "http://[::1]/v1",
        "http://localhost:11434",
        "http://192.168.1.10/v1",
    ],
)
def test_a_user_cannot_point_a_key_at_a_private_address(url):
    user = UserFactory()

    with pytest.raises(ValidationError):
        credential_create(
            actor=user,
            scope=Scope.USER,
            user=user,
            kind="openai_compatible",
            name="mine",
            api_key="sk-x-12345678",
            base_url=url,
        )

    assert not ProviderCredential.objects.exists()


def test_a_user_may_use_a_public_address():
    user = UserFactory()

    made = credential_create(
        actor=user,
        scope=Scope.USER,
        user=user,
        kind="openai_compatible",
        name="mine",
        api_key="sk-x-12345678",
        base_url="http://93.184.216.34/v1",
    )

    assert made.pk


def test_only_an_admin_may_allow_private_network():
    user = UserFactory()
    admin = UserFactory(is_staff=True)

    with pytest.raises(PermissionDenied):
        credential_create(
            actor=user,
            scope=Scope.USER,
            user=user,
            kind="ollama",
            name="local",
            base_url="http://127.0.0.1:11434",
            allow_private_network=True,
        )
    made = credential_create(
        actor=admin,
        scope=Scope.USER,
        user=user,
        kind="ollama",
        name="local",
        base_url="http://127.0.0.1:11434",
        allow_private_network=True,
    )

    assert made.allow_private_network
    with pytest.raises(ValidationError):
        credential_update(credential=made, actor=user, allow_private_network=False)


def test_env_sync_creates_then_updates_global_credentials(monkeypatch, settings):
    settings.AURAX_DEMO_PROVIDER = False
    for name in (
        "OPENAI",
        "ANTHROPIC",
        "GEMINI",
        "OLLAMA",
        "MISTRAL",
        "GROQ",
        "XAI",
        "OPENROUTER",
        "DEEPSEEK",
        "TOGETHER",
    ):
        monkeypatch.delenv(f"{name}_API_KEY", raising=False)
        monkeypatch.delenv(f"{name}_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-first-1111")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-2222")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")

    call_command("providers", "sync-env", verbosity=0)

    creds = {c.kind: c for c in ProviderCredential.objects.filter(scope=Scope.GLOBAL)}
    assert creds["openai"].api_key == "sk-env-first-1111"
    assert creds["anthropic"].base_url == "http://127.0.0.1:9/"
    assert "demo" not in creds

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-second-3333")
    call_command("providers", "sync-env", verbosity=0)

    openai = ProviderCredential.objects.get(scope=Scope.GLOBAL, kind="openai")
    assert openai.api_key == "sk-env-second-3333"
    assert ProviderCredential.objects.filter(kind="openai").count() == 1


def test_the_demo_provider_appears_when_nothing_else_is_configured(monkeypatch, settings):
    settings.AURAX_DEMO_PROVIDER = False
    for name in (
        "OPENAI",
        "ANTHROPIC",
        "GEMINI",
        "OLLAMA",
        "MISTRAL",
        "GROQ",
        "XAI",
        "OPENROUTER",
        "DEEPSEEK",
        "TOGETHER",
    ):
        monkeypatch.delenv(f"{name}_API_KEY", raising=False)
        monkeypatch.delenv(f"{name}_BASE_URL", raising=False)
    membership = MembershipFactory()

    call_command("providers", "sync-env", verbosity=0)

    candidates = candidates_resolve_sync(
        user=membership.user, workspace=membership.workspace, model="aurax-demo"
    )
    assert [c.kind for c in candidates] == ["demo"]

    credential(models=["gpt-4o-mini"])
    call_command("providers", "sync-env", verbosity=0)
    assert (
        candidates_resolve_sync(
            user=membership.user, workspace=membership.workspace, model="aurax-demo"
        )
        == []
    )

    settings.AURAX_DEMO_PROVIDER = True
    call_command("providers", "sync-env", verbosity=0)
    assert (
        len(
            candidates_resolve_sync(
                user=membership.user, workspace=membership.workspace, model="aurax-demo"
            )
        )
        == 1
    )
