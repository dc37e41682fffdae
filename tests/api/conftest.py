import pytest

from providers.models import Scope
from tests.billing.conftest import celery_worker  # noqa: F401  background responses
from tests.factories import UserFactory
from tests.gateway.conftest import anthropic_credential  # noqa: F401  shared with the pipeline's


@pytest.fixture(autouse=True)
def _fast_providers(settings):
    settings.PROVIDER_RETRY_BASE_DELAY = 0.01
    settings.PROVIDER_RETRY_MAX_WAIT = 0.5
    settings.PROVIDER_RETRY_ATTEMPTS = 1
    settings.PROVIDER_READ_TIMEOUT = 5.0
    settings.PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.PROVIDER_TRUST_ENV = False


@pytest.fixture(autouse=True)
async def _shared_http_client_closed():
    yield
    from providers.http import client_close

    await client_close()


@pytest.fixture
def credential(transactional_db, fake_upstream):
    """A global OpenAI-compatible credential at the fake upstream, its catalog listed."""
    from providers.services import catalog_refresh, credential_create

    credential = credential_create(
        actor=None,
        scope=Scope.GLOBAL,
        kind="openai",
        name="Fake",
        api_key="sk-upstream-SECRET-4242",
        base_url=fake_upstream.base_url("openai"),
        allow_private_network=True,
    )
    catalog_refresh(credential.id)
    return credential


@pytest.fixture
def api_user(transactional_db):
    return UserFactory()


@pytest.fixture
def api_key(api_user, credential):
    """(ApiKey, raw secret) for the user's personal workspace."""
    from api.services import api_key_create
    from workspaces.models import Membership

    membership = Membership.objects.select_related("workspace").get(user=api_user)
    return api_key_create(membership=membership, name="tests")


@pytest.fixture
def auth(api_key):
    return {"Authorization": f"Bearer {api_key[1]}"}
