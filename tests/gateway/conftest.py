import pytest
from asgiref.sync import sync_to_async

from providers.models import Scope
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fast_providers(settings):
    settings.PROVIDER_RETRY_BASE_DELAY = 0.01
    settings.PROVIDER_RETRY_MAX_WAIT = 0.5
    settings.PROVIDER_RETRY_ATTEMPTS = 1
    settings.PROVIDER_READ_TIMEOUT = 5.0
    settings.PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.PROVIDER_DEMO_TOKEN_DELAY = 0
    settings.PROVIDER_TRUST_ENV = False


@pytest.fixture
async def _shared_http_client_closed():
    """Close the loop's pooled provider client before pytest-asyncio closes the loop."""
    yield
    from providers.http import client_close

    await client_close()


@pytest.fixture
def caller(transactional_db):
    """A user and their personal workspace, as `pipeline.stream` takes them."""
    from workspaces.selectors import personal_workspace_get

    user = UserFactory()
    return {"user": user, "workspace": personal_workspace_get(user=user)}


def openai_credential_create(fake_upstream, *, name="Fake", api_key="sk-test-key-1234"):
    """A global OpenAI-compatible credential pointing at the fake upstream."""
    from providers.services import credential_create

    return credential_create(
        actor=None,
        scope=Scope.GLOBAL,
        kind="openai",
        name=name,
        api_key=api_key,
        base_url=fake_upstream.base_url("openai"),
        allow_private_network=True,
    )


@pytest.fixture
def credential(transactional_db, fake_upstream):
    """A global OpenAI-compatible credential pointing at the fake upstream."""
    return openai_credential_create(fake_upstream)


@pytest.fixture
def anthropic_credential(transactional_db, fake_upstream):
    """A global Anthropic credential pointing at the fake upstream (whose API takes a
    temperature from 0 to 1 only)."""
    from providers.services import credential_create

    return credential_create(
        actor=None,
        scope=Scope.GLOBAL,
        kind="anthropic",
        name="Claude",
        api_key="sk-ant-test-5678",
        base_url=fake_upstream.base_url("anthropic"),
        allow_private_network=True,
    )


@pytest.fixture
def fake_small_priced(transactional_db):
    """$1,000 per million tokens in and out for the fake upstream's fake-small."""
    from decimal import Decimal

    from billing.models import ModelPriceOverride

    return ModelPriceOverride.objects.create(
        provider_kind="openai",
        model="fake-small",
        input_per_mtok=Decimal(1000),
        output_per_mtok=Decimal(1000),
    )


@sync_to_async
def alias_create(name: str, *targets) -> None:
    """A global alias over (credential, model id) targets, in order."""
    from providers.models import AliasTarget, ModelAlias

    alias = ModelAlias.objects.create(name=name)
    for position, (credential, model_id) in enumerate(targets):
        AliasTarget.objects.create(
            alias=alias, credential=credential, model_id=model_id, position=position
        )


def model_for(credential, model_id: str = "fake-small") -> str:
    return f"{credential.id}:{model_id}"


@sync_to_async
def usage_events(**filters):
    """The ledger rows, once everything queued by this process is written."""
    from billing.ledger import ledger_flush
    from billing.models import UsageEvent

    ledger_flush()
    return list(UsageEvent.objects.filter(**filters).order_by("pk"))
