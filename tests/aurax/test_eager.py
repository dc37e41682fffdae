"""aurax.eager: `eager_task`, as providers.http uses it (aiohttp's request-body task started as
Python 3.12 starts it, so that a request's body leaves in the loop turn that sends the
request), and `eager_start`, as chat.socket_loop uses it (a frame handled in its sender's
turn)."""

import asyncio
import sys

import pytest
from aiohttp import client_reqrep

from aurax.eager import eager_start, eager_task


async def test_a_coroutine_that_never_waits_is_done_before_the_call_returns():
    ran = []

    async def write():
        ran.append("written")
        return 7

    future = eager_task(write())
    assert ran == ["written"] and future.done() and future.result() == 7


async def test_a_failure_before_any_wait_is_in_the_returned_future():
    async def write():
        raise OSError("connection reset")

    future = eager_task(write())
    assert future.done()
    with pytest.raises(OSError, match="connection reset"):
        future.result()


async def test_a_coroutine_runs_up_to_its_first_wait_then_a_task_carries_it_on():
    loop = asyncio.get_running_loop()
    steps, drained, paused = [], loop.create_future(), loop.create_future()

    async def write():
        steps.append("headers and body")
        value = await drained  # as a write that fills the socket's buffer waits for drain
        steps.append(f"drained {value}")
        with pytest.raises(ValueError):
            await paused
        await asyncio.sleep(0)  # a bare yield to the loop
        return "eof"

    task = eager_task(write())
    assert steps == ["headers and body"] and not task.done()
    drained.set_result("ok")
    paused.set_exception(ValueError("given to the coroutine"))
    assert await task == "eof"
    assert steps == ["headers and body", "drained ok"]


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits():
    loop = asyncio.get_running_loop()
    never, cleaned = loop.create_future(), []

    async def write():
        try:
            await never
        finally:
            cleaned.append("closed")

    task = eager_task(write())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["closed"] and never.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="aiohttp starts it eagerly itself")
def test_aiohttp_creates_its_body_task_with_it():
    assert client_reqrep.asyncio.create_task is eager_task
    assert client_reqrep.asyncio.CancelledError is asyncio.CancelledError


async def test_eager_start_runs_a_coroutine_that_never_waits_to_its_end_and_returns_none():
    ran = []

    async def handle():
        ran.append("sent")

    assert eager_start(handle()) is None
    assert ran == ["sent"]


async def test_eager_start_raises_what_the_coroutine_raised_before_waiting():
    async def handle():
        raise ValueError("broken handler")

    with pytest.raises(ValueError, match="broken handler"):
        eager_start(handle())


async def test_eager_start_hands_a_coroutine_that_waits_to_a_task_from_that_wait():
    loop = asyncio.get_running_loop()
    later, steps = loop.create_future(), []

    async def handle():
        steps.append("before the wait")
        steps.append(await later)
        return "done"

    task = eager_start(handle())
    assert steps == ["before the wait"] and isinstance(task, asyncio.Task)
    later.set_result("after the wait")
    assert await task == "done"
    assert steps == ["before the wait", "after the wait"]
