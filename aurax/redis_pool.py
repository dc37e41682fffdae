"""One Redis connection pool per process for Django's cache.

Django keeps a cache backend per thread and per async context, and each Redis backend makes
its own connection pool, so every request (and every database thread) would open fresh Redis
connections. The cache's `pool_class` option points here: instances share one pool per URL.
"""

import threading

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **kwargs):
        key = (url, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
