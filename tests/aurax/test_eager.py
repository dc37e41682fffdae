"""aurax.eager: `eager_task`, as providers.http uses it (aiohttp's request-body task started as
Python 3.12 starts it, so that a request's body leaves in the loop turn that sends the
request), and `eager_start`, as chat.socket_loop uses it (a frame handled in its sender's
turn), and `task_started`, as chat.generation uses it (an answer's generation run up to the
upstream's response in the turn its database hop returns in, as the task that goes on with it:
aiohttp's timeouts need a current task)."""

import asyncio
import contextvars
import sys

import pytest
from aiohttp import client_reqrep

from aurax.eager import eager_start, eager_task, task_started


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


def _in_a_callback(function):
    """Call `function` from a plain callback of the loop (no task running), as
    chat.generation calls `task_started`; its result."""
    loop = asyncio.get_running_loop()
    called = loop.create_future()
    loop.call_soon(lambda: called.set_result(function()))
    return called


async def test_task_started_runs_the_first_step_now_as_the_task_it_returns():
    loop = asyncio.get_running_loop()
    seen, answered = [], loop.create_future()

    async def generate():
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # needs a current task, as aiohttp's request does
            value = await answered
        seen.append((asyncio.current_task(), value))
        return "finished"

    task = await _in_a_callback(lambda: task_started(generate(), name="generation"))
    assert seen == [task] and not task.done(), "ran in the callback, as the task"
    assert task.get_name() == "generation"
    assert "generate()" in repr(task) and task.get_stack()[0].f_code.co_name == "generate"
    answered.set_result("headers")
    assert await task == "finished"
    assert seen[1] == (task, "headers")


async def test_task_started_first_step_comes_before_what_was_queued_after_it():
    """The point of it: a task created in the callback would run its first step in a later
    turn, after the callbacks queued meanwhile; this one has run before they are."""
    loop = asyncio.get_running_loop()
    order = []

    async def generate():
        order.append("generation")

    def begin():
        task_started(generate())
        loop.call_soon(order.append, "queued after")

    loop.call_soon(begin)
    loop.call_soon(order.append, "queued before")
    await asyncio.sleep(0.05)
    assert order == ["generation", "queued before", "queued after"]


async def test_task_started_first_step_runs_in_the_task_s_context():
    """What the first step sets in a context variable, its later steps see (and the caller's
    context is not changed), as with any task."""
    loop = asyncio.get_running_loop()
    request_id = contextvars.ContextVar("request_id", default="the caller's")
    answered = loop.create_future()

    async def generate():
        request_id.set("the generation's")
        await answered
        return request_id.get()

    task = await _in_a_callback(lambda: task_started(generate()))
    answered.set_result(None)
    assert await task == "the generation's"
    assert request_id.get() == "the caller's"


async def test_task_started_result_and_failure_of_a_first_step_that_ends():
    async def at_once():
        return 3

    async def fails():
        raise LookupError("gone")

    done = await _in_a_callback(lambda: task_started(at_once()))
    failed = await _in_a_callback(lambda: task_started(fails()))
    assert await done == 3
    with pytest.raises(LookupError, match="gone"):
        await failed


async def test_task_started_cancelled_before_its_next_turn_tells_the_coroutine():
    """Cancelled in the same turn as its first step: the coroutine gets the cancellation at
    the wait it stopped at, and its cleanup runs."""
    loop = asyncio.get_running_loop()
    never, cleaned = loop.create_future(), []

    async def generate():
        try:
            await never
        finally:
            cleaned.append(asyncio.current_task())

    def begin():
        task = task_started(generate())
        task.cancel()
        return task

    task = await _in_a_callback(begin)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [task]


async def test_task_started_refuses_to_run_inside_another_task():
    async def generate():
        pass

    coro = generate()
    with pytest.raises(RuntimeError):
        task_started(coro)
    coro.close()
