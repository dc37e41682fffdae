"""`eager_task`: a coroutine started as Python 3.12's `eager_start` starts a task, on 3.11.

It runs at once, in the caller's turn of the loop, up to its first real wait; only then, if at
all, does a task carry it on. Used where one more loop turn is on the way to a user's first
token: aiohttp's request-body task (providers.http) and the chat socket's delivery of the
frames of answers streaming in its own process (chat.socket_loop)."""

from __future__ import annotations

import asyncio


class _Continued:
    """Awaiting this goes on running `coro` from the wait it stopped at (`waiting_on`, what it
    yielded), as the task running it would have: what the task sends or throws into it (a
    result, a cancellation) goes to the coroutine."""

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro, waiting_on):
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self):
        coro, waiting_on = self._coro, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except BaseException as exc:  # thrown in by the task: give it to the coroutine
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _continued(coro, waiting_on):
    return await _Continued(coro, waiting_on)


def eager_task(coro, *, name=None, context=None):
    """`asyncio.create_task(coro)` with 3.12's `eager_start`: the coroutine runs now, up to its
    first real wait. One that finishes without waiting gets a done future (its result or
    exception in it); otherwise a task carries it on from that wait."""
    loop = asyncio.get_running_loop()
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        done = loop.create_future()
        done.set_exception(exc)
        return done
    return loop.create_task(_continued(coro, waiting_on), name=name)


def eager_start(coro, *, name=None) -> asyncio.Task | None:
    """Run `coro` now, up to its first real wait: None when it finished without one (what it
    raised is raised here), else the task that carries it on. `eager_task` without a future
    for a coroutine that finishes at once."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_continued(coro, waiting_on), name=name)
