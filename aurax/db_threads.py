"""The threads the hot paths run their database work on: the completion pipeline's admission,
the chat's actions, the usage ledger's batches (`db_submit`, usable without an event loop).

Work someone is waiting on (`db_call`: a chat send, an API request's admission) goes ahead
of queued background work (`db_background`, `db_submit`: progress saves, finishing answers,
ledger batches, lease reaping). On SQLite every call of the process shares one thread, where
a send would otherwise queue behind the saves and finishes of every other answer streaming.

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
import heapq
import itertools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connections

_executor: ThreadPoolExecutor | None = None

WAITED_ON, BACKGROUND = 0, 1  # priorities: lower runs first, in submission order within one
# A heap of (priority, sequence number, (future, context, function, args, kwargs)).
_queued: list = []
_queued_lock = threading.Lock()
_sequence = itertools.count()


def _threads() -> int:
    """SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
    SQLite's busy handler (1, 2, 5, 10… ms) instead of being woken: measured here, 8 threads
    served 55 req/s where one served 98. So one thread for SQLite, a few for a server: the
    threads share the GIL with the event loop, and with PostgreSQL 4 did better than 8 (/v1
    at 16 clients 389-426 req/s against 289-301, chat sends at 100 streams p95 83-103 ms
    against 103-158; bench/README.md)."""
    configured = os.environ.get("AURAX_PIPELINE_DB_THREADS")
    if configured:
        return max(1, int(configured))
    return 1 if connections["default"].vendor == "sqlite" else 4


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="aurax-db")
    return _executor


def _connections_tidy() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        # (`autocommit`, not `get_autocommit()`, which would open a connection: there is one)
        if conn.in_atomic_block or conn.autocommit != conn.settings_dict["AUTOCOMMIT"]:
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


def _run_first_queued() -> None:
    """One pool task per queued call, each running whichever queued call comes first now:
    the pool keeps its own lifecycle (threads joined at exit, pending work done), and the
    order is decided when a thread is free rather than when the call was submitted."""
    with _queued_lock:
        _priority, _n, (future, context, function, args, kwargs) = heapq.heappop(_queued)
    if not future.set_running_or_notify_cancel():  # the caller was cancelled meanwhile
        return
    try:
        if context is None:
            result = _run(function, args, kwargs)
        else:
            result = context.run(_run, function, args, kwargs)
    except BaseException as exc:  # as ThreadPoolExecutor does: the caller gets it
        future.set_exception(exc)
    else:
        future.set_result(result)


def _submit(priority: int, function, args, kwargs, context=None) -> Future:
    future: Future = Future()
    entry = (priority, next(_sequence), (future, context, function, args, kwargs))
    with _queued_lock:
        heapq.heappush(_queued, entry)
    try:
        _pool().submit(_run_first_queued)
    except BaseException:  # no pool task will run it (interpreter shutting down)
        with _queued_lock:
            _queued.remove(entry)
            heapq.heapify(_queued)
        raise
    return future


async def _call(priority: int, function, args, kwargs):
    context = contextvars.copy_context()  # the request id for logs, as sync_to_async does
    future = _submit(priority, function, args, kwargs, context)
    return await asyncio.wrap_future(future, loop=asyncio.get_running_loop())


async def db_call(function, /, *args, **kwargs):
    """Run sync database code on the pipeline's threads without blocking the event loop,
    ahead of queued background work: for work a user or client is waiting on."""
    return await _call(WAITED_ON, function, args, kwargs)


def db_start(function, /, *args, **kwargs) -> Future:
    """`db_call`'s work, submitted without waiting for it: a `concurrent.futures.Future` that
    several coroutines may each await through their own `asyncio.wrap_future`. Each wrap is
    resolved in the loop turn the result arrives in, in the order they were made. Cancelling
    one of them cancels the work only while it is still queued."""
    return _submit(WAITED_ON, function, args, kwargs, contextvars.copy_context())


async def db_background(function, /, *args, **kwargs):
    """`db_call` for work nobody waits on right now: a thread takes it only when no
    waited-on call is queued."""
    return await _call(BACKGROUND, function, args, kwargs)


def db_submit(function, /, *args, **kwargs) -> Future:
    """Run sync database code on the same threads from anywhere (no event loop needed), as
    background work; returns a `concurrent.futures.Future`."""
    return _submit(BACKGROUND, function, args, kwargs)
