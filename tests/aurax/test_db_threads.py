"""The database threads run work someone waits on before queued background work."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from aurax import db_threads


@pytest.fixture
def one_thread(monkeypatch):
    """A pool of one thread, as on SQLite (services mode has several)."""
    pool = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(db_threads, "_executor", pool)
    yield
    pool.shutdown(wait=True)


async def test_a_waited_on_call_runs_before_background_work_queued_earlier(one_thread):
    busy, release = threading.Event(), threading.Event()
    order = []

    def hold():
        busy.set()
        release.wait(5)

    holding = db_threads.db_submit(hold)
    assert await asyncio.to_thread(busy.wait, 5)
    ledger = db_threads.db_submit(order.append, "ledger batch")
    progress = asyncio.ensure_future(db_threads.db_background(order.append, "progress save"))
    await asyncio.sleep(0)  # the background call is queued
    send = asyncio.ensure_future(db_threads.db_call(order.append, "send"))
    await asyncio.sleep(0)
    release.set()

    await asyncio.gather(send, progress, asyncio.wrap_future(ledger), asyncio.wrap_future(holding))
    assert order == ["send", "ledger batch", "progress save"]


async def test_results_and_errors_reach_the_caller(one_thread):
    assert await db_threads.db_call(lambda a, *, b: a + b, 2, b=3) == 5
    assert db_threads.db_submit(sum, [1, 2]).result(5) == 3
    with pytest.raises(ZeroDivisionError):
        await db_threads.db_background(lambda: 1 / 0)


async def test_a_call_whose_caller_was_cancelled_while_queued_does_not_run(one_thread):
    busy, release = threading.Event(), threading.Event()
    ran = []
    holding = db_threads.db_submit(lambda: (busy.set(), release.wait(5)))
    assert await asyncio.to_thread(busy.wait, 5)
    call = asyncio.ensure_future(db_threads.db_call(ran.append, "cancelled"))
    await asyncio.sleep(0)
    call.cancel()
    await asyncio.sleep(0)
    release.set()
    holding.result(5)
    await db_threads.db_call(ran.append, "next")

    assert ran == ["next"]


@pytest.mark.django_db(transaction=True)
def test_a_call_that_needs_no_database_does_not_touch_the_threads_connection(django_db_blocker):
    # A thread keeps its connection between calls (SQLite); the next call, which needs no
    # database, must not open or check it: in tests, pytest-django then forbids database
    # access (a background round of the lease reaper during a test without one).
    db_threads.db_submit(lambda: connection.ensure_connection()).result()

    with django_db_blocker.block():
        assert db_threads.db_submit(lambda: 42).result() == 42
