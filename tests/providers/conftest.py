import pytest

from providers.types import ChatRequest, Message, Target


@pytest.fixture(autouse=True)
def _fast_providers(settings):
    settings.PROVIDER_RETRY_BASE_DELAY = 0.01
    settings.PROVIDER_RETRY_MAX_WAIT = 0.5
    settings.PROVIDER_READ_TIMEOUT = 2.0
    settings.PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.PROVIDER_DEMO_TOKEN_DELAY = 0
    settings.PROVIDER_TRUST_ENV = False


@pytest.fixture
async def http_client_closed_after():
    """Close the loop's shared client before pytest-asyncio closes the loop."""
    yield
    from providers.http import client_close

    await client_close()


def target_for(fake_upstream, kind: str, api_key: str = "sk-test-key-1234") -> Target:
    return Target(kind=kind, base_url=fake_upstream.base_url(kind), api_key=api_key, name=kind)


def chat(text: str, *, model: str = "fake-small", system: str = "", **kwargs) -> ChatRequest:
    messages = [Message("system", system)] if system else []
    messages.append(Message("user", text))
    return ChatRequest(model=model, messages=tuple(messages), **kwargs)
