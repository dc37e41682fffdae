"""The threads the hot paths run their database work on: the completion pipeline's admission,
the chat's actions, the usage ledger's batches (`db_submit`, usable without an event loop).

`database_sync_to_async` inside a per-request `ThreadSensitiveContext` starts a thread for
every request and, with CONN_MAX_AGE=0, opens and closes a database connection on every call
(on SQLite that is a file open, two PRAGMAs and Django's function registrations each time).
These calls instead run on a small fixed pool whose threads keep their connection when that
is free to do:

- SQLite: the connection is a local file handle, kept open; closed only after an error left
  it unusable (or a transaction was left open, which would be a bug).
- a server database with Django's connection pool (`OPTIONS["pool"]`): `close()` hands the
  connection back to the pool, so it is called after every call, as Django does.
- otherwise Django's own rule (`close_if_unusable_or_obsolete`, i.e. CONN_MAX_AGE).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

_executor: ThreadPoolExecutor | None = None


def _threads() -> int:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
    SQLite's busy handler (1, 2, 5, 10… ms) instead of being woken: measured here, 8 threads
    served 55 req/s where one served 98. So one thread for SQLite, more for a server."""
    configured = os.environ.get("AURAX_PIPELINE_DB_THREADS")
    if configured:
        return max(1, int(configured))
    return 1 if connections["default"].vendor == "sqlite" else 8


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="aurax-db")
    return _executor


def _connections_tidy() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()
        elif conn.vendor == "sqlite":
            if conn.errors_occurred and not conn.is_usable():
                conn.close()
            conn.errors_occurred = False
        elif conn.settings_dict.get("OPTIONS", {}).get("pool"):
            conn.close()
        else:
            conn.close_if_unusable_or_obsolete()


def _run(function, args, kwargs):
    try:
        return function(*args, **kwargs)
    finally:
        _connections_tidy()


async def db_call(function, /, *args, **kwargs):
    """Run sync database code on the pipeline's threads without blocking the event loop."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the request id for logs, as sync_to_async does
    call = functools.partial(context.run, _run, function, args, kwargs)
    return await loop.run_in_executor(_pool(), call)


def db_submit(function, /, *args, **kwargs):
    """Run sync database code on the same threads from anywhere (no event loop needed);
    returns a `concurrent.futures.Future`."""
    return _pool().submit(_run, function, args, kwargs)
