import contextvars
import os

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (services mode)"
)


def test_cache_backends_of_different_requests_share_one_redis_pool():
    """Each ASGI request starts in a context of its own, where Django makes a new cache
    backend; they must still share the process's Redis connections."""
    from django.core.cache import caches

    def pool_in_a_fresh_context():
        backend = caches["default"]
        backend.get("warm-up")
        return backend, backend._cache._get_connection_pool(False)

    results = [contextvars.Context().run(pool_in_a_fresh_context) for _ in range(3)]
    assert len({id(backend) for backend, _ in results}) == 3  # really separate backends
    assert len({id(pool) for _, pool in results}) == 1


def test_cache_backends_of_different_requests_share_one_redis_client():
    """Django builds a `redis.Redis` per cache operation; here one is built per pool."""
    from django.core.cache import caches

    def client_in_a_fresh_context():
        backend = caches["default"]
        backend.set("shared-client", 1)
        assert backend.get("shared-client") == 1
        return backend._cache.get_client(write=True), backend._cache.get_client()

    results = [contextvars.Context().run(client_in_a_fresh_context) for _ in range(3)]
    clients = {id(client) for pair in results for client in pair}
    assert len(clients) == 1
