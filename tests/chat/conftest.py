import pytest
from asgiref.sync import sync_to_async

from tests.factories import UserFactory
from tests.gateway.conftest import (  # noqa: F401  shared with the pipeline tests
    _fast_providers,
    _shared_http_client_closed,
    anthropic_credential,
    credential,
    model_for,
)


@pytest.fixture
async def alice(transactional_db):
    """A user, for the socket tests."""
    return await sync_to_async(UserFactory)()
