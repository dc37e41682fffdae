"""Coroutines started in the caller's turn of the loop, as Python 3.12 can start a task, on 3.11.

`eager_task` and `eager_start` run a coroutine at once, up to its first real wait; only then,
if at all, does a task carry it on. Used where one more loop turn is on the way to a user's
first token: aiohttp's request-body task (providers.http) and the chat socket's delivery of
the frames of answers streaming in its own process (chat.socket_loop). `task_started` does
the same as the task itself (current task and context during the first step, as 3.12's eager
tasks), for code that needs one: an answer's generation started from the callback its
database hop returns to (chat.generation), which makes its upstream request in that step."""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars


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
    return loop.create_task(_Carried(coro, (_WAITING, waiting_on)), name=name)


def eager_start(coro, *, name=None) -> asyncio.Task | None:
    """Run `coro` now, up to its first real wait: None when it finished without one (what it
    raised is raised here), else the task that carries it on. `eager_task` without a future
    for a coroutine that finishes at once."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_Carried(coro, (_WAITING, waiting_on)), name=name)


class _Carried(collections.abc.Coroutine):
    """What the task that carries on an eagerly started coroutine runs: its first step takes
    up where the coroutine's own first step, made before, ended (the wait it stopped at, its
    result or its exception); after that every step, result and cancellation goes to the
    coroutine, as if the task had run it from the start."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro, first=None):
        self._coro = coro
        self._first = first  # (how the first step ended, with what), once it has run

    def first_step(self) -> None:
        try:
            self._first = (_WAITING, self._coro.send(None))
        except StopIteration as stop:
            self._first = (_RETURNED, stop.value)
        except BaseException as exc:  # the task raises it when it runs
            self._first = (_RAISED, exc)

    def send(self, value):
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        ended, outcome = first
        if ended is _WAITING:
            return outcome
        if ended is _RETURNED:
            raise StopIteration(outcome)
        raise outcome

    def throw(self, *exc_info):
        self._first = None  # cancelled before its first turn: the coroutine is told at its wait
        return self._coro.throw(*exc_info)

    def close(self):
        self._coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    # What asyncio shows of a task's coroutine (its repr, `get_stack`): the coroutine's own.
    @property
    def __name__(self):
        return self._coro.__qualname__

    @property
    def cr_code(self):
        return self._coro.cr_code

    @property
    def cr_frame(self):
        return self._coro.cr_frame


_WAITING, _RETURNED, _RAISED = object(), object(), object()


def task_started(coro, *, name=None) -> asyncio.Task:
    """A task for `coro` whose first step runs now, as Python 3.12's
    `asyncio.Task(..., eager_start=True)` does: as the current task, so that what needs one
    (a timeout, an aiohttp request) runs in it. The task carries the coroutine on from its
    first wait. Only from a plain callback of the loop, where no task runs (what makes a task
    the current one, asyncio's `_enter_task` on 3.11, which has no public way, needs that).
    """
    loop = asyncio.get_running_loop()
    if asyncio.current_task(loop) is not None:
        raise RuntimeError("task_started is called from a callback of the loop, not in a task")
    carried = _Carried(coro)
    context = contextvars.copy_context()  # the task's: its first step runs in it too
    task = loop.create_task(carried, name=name, context=context)  # its next step: next turn
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(carried.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
    return task
