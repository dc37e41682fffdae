"""An admission whose routes are cached makes one cache round trip: the generation tokens and
the circuit states of the credentials it routes to are read together."""

import pytest
from django.core.cache import caches

from providers import routing
from providers.circuit import circuit_failure
from tests.factories import UserFactory
from tests.gateway.conftest import model_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def resolve(credential):
    from workspaces.selectors import personal_workspace_get

    user = UserFactory()
    workspace = personal_workspace_get(user=user)

    def run():
        with routing.generations_read_once():
            return routing.candidates_resolve_sync(
                user=user, workspace=workspace, model=model_for(credential)
            )

    return run


@pytest.fixture
def cache_calls(monkeypatch):
    """The cache calls made from outside the cache (the local-memory backend's get_many
    calls its own get per key)."""
    backend = caches["default"]
    calls, depth = [], [0]

    def spy(name, real):
        def call(*args, **kwargs):
            if not depth[0]:
                calls.append(name)
            depth[0] += 1
            try:
                return real(*args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    for name in ("get", "get_many"):
        monkeypatch.setattr(backend, name, spy(name, getattr(backend, name)))
    return calls


def test_a_cached_route_costs_one_cache_call_with_its_circuit_states(
    resolve, credential, cache_calls
):
    resolve()  # loads the route; its credential's circuit joins the shared read from now on
    cache_calls.clear()

    [candidate] = resolve()

    assert candidate.credential_id == credential.id
    assert cache_calls == ["get_many"]


def test_an_open_circuit_is_seen_through_the_shared_read(resolve, credential, settings):
    resolve()
    for _ in range(settings.PROVIDER_CIRCUIT_FAILURES):
        circuit_failure(credential.id)

    assert resolve() == []
