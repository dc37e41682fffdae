"""An admission whose routes are cached makes one cache round trip: the generation tokens and
the circuit states of the credentials it routes to are read together."""

import os

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


# --- The round trip sent ahead (generations_prefetched): a chat send's statements overlap it --

redis_only = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis (services mode: REDIS_URL)"
)


def _in_use(backend) -> int:
    return len(backend._cache.get_client().connection_pool._in_use_connections)


@redis_only
def test_the_read_sent_ahead_is_the_one_the_admission_uses(resolve, credential, cache_calls):
    resolve()  # the route cached, its credential's circuit read along from now on
    backend = caches["default"]
    before = backend.get(routing.ROUTING_GENERATION)
    with routing.generations_prefetched():
        backend.set(routing.ROUTING_GENERATION, "bumped-after-the-read-left")
        cache_calls.clear()
        with routing.generations_read_once():
            assert routing.generation_value(routing.ROUTING_GENERATION) == before
        assert cache_calls == []  # no read of its own
    assert _in_use(backend) == 0
    with routing.generations_read_once():  # the next admission reads afresh
        assert routing.generation_value(routing.ROUTING_GENERATION) == (
            "bumped-after-the-read-left"
        )


@redis_only
def test_a_read_sent_ahead_and_never_used_leaves_its_connection_clean(credential):
    backend = caches["default"]
    backend.set("probe", "value")
    for _ in range(20):
        with routing.generations_prefetched():
            pass
    with pytest.raises(ValueError), routing.generations_prefetched():
        raise ValueError("the action was refused")
    assert _in_use(backend) == 0
    assert backend.get("probe") == "value"
    assert backend.get_many(["probe"]) == {"probe": "value"}


@redis_only
def test_keys_that_changed_since_the_read_left_are_read_afresh(resolve, credential, cache_calls):
    resolve()
    with routing.generations_prefetched():
        routing._circuits_read_along.add(987654)  # a credential routed to meanwhile
        try:
            cache_calls.clear()
            with routing.generations_read_once():
                assert routing.circuit_key(987654) in routing._generation_snapshot.get()[1]
        finally:
            routing._circuits_read_along.discard(987654)
    assert cache_calls == ["get_many"]
    assert _in_use(caches["default"]) == 0


@redis_only
def test_a_reply_that_cannot_be_read_is_read_again(resolve, credential, cache_calls):
    resolve()
    with routing.generations_prefetched():
        _keys, sent = routing._generation_prefetch.get()
        sent._connection.disconnect()  # the connection broke on the way
        cache_calls.clear()
        [candidate] = resolve()
    assert candidate.credential_id == credential.id
    assert cache_calls == ["get_many"]
    assert _in_use(caches["default"]) == 0


def test_without_a_cache_that_sends_ahead_the_block_changes_nothing(
    resolve, credential, cache_calls
):
    resolve()
    with routing.generations_prefetched():
        cache_calls.clear()
        [candidate] = resolve()
    assert candidate.credential_id == credential.id
    sent_ahead = hasattr(caches["default"], "get_many_sent")
    assert cache_calls == ([] if sent_ahead else ["get_many"])


def test_a_chat_send_s_hop_sends_the_admission_s_read_ahead():
    from chat import consumers
    from chat.actions import ActionRefused

    seen = []

    def action(**kwargs):
        seen.append(routing._generation_prefetch.get() is not None)
        raise ActionRefused("invalid", "refused")

    with pytest.raises(ActionRefused):
        consumers._started(action)
    assert seen == [hasattr(caches["default"], "get_many_sent")]
    assert routing._generation_prefetch.get() is None
