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
