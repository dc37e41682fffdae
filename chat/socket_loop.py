"""How a chat socket's consumer reads its two sources: the socket and the channel layer.

channels' own loop (await_many_dispatch) waits on both with asyncio.wait and starts a new task
after every message: per relayed delta of every socket. Here each source is read by one
long-lived task; they take turns so that, as with channels, one message is handled at a time (a
frame handler that awaits the database holds back the events behind it) and a socket that falls
behind leaves the layer's queue, not the consumer, to fill up.

channels' own dispatch also first closes the stale database connections of its sync thread: a
thread hop for every frame received and every event relayed. A consumer using this loop keeps
its database work off that thread (chat.consumers runs it on aurax.db_threads, which tidy their
own connections), so the hop buys nothing.

Delivered in the sender's turn. The events a consumer lists in `direct_events` (the chat's
deltas), when a layer of this project sends them to a channel of this process with nothing
queued, are handled at once, in the loop turn they are sent in (the layer's `receiver_set`),
rather than by the reader task in a later turn: one loop turn less between an answer's text
and its socket, and no task wake-up per frame. The order is kept: a message is only taken
so while nothing is being handled (the turn is free) and nothing waits in the queue, and a
handler that has to wait finishes before the next message is handled. A failure in it ends
the consumer, as in the reader.

Only channels and a plain-asyncio helper are imported here: bench/ws_floor.py relays through
the same loop without AURAX's apps.
"""

from __future__ import annotations

import asyncio
import functools

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper

from aurax.eager import eager_start


class LeanLoopMixin:
    """Put first in the bases of a channels consumer class."""

    direct_events: frozenset[str] = frozenset()  # handled in the sender's turn (see above)
    # What the server raises on a send to a socket its browser has left (a reload, a closed
    # tab) before the consumer has heard of it: the events already on their way are dropped,
    # and the socket's disconnect, next in line, ends the consumer.
    socket_gone_errors: tuple[type[BaseException], ...] = ()

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        # channels' session middleware wraps `send` to save a changed session when an HTTP
        # response starts. It never does for a WebSocket message, yet it inspects the session
        # on every frame sent. The consumer sends through what it wraps.
        wrapper = getattr(send, "__self__", None)
        real_send = wrapper.real_send if isinstance(wrapper, InstanceSessionWrapper) else send
        self.base_send = self._socket_send(real_send) if self.socket_gone_errors else real_send
        turn = asyncio.Lock()
        in_hand = 0  # messages taken from a source and not yet handled
        failed = asyncio.get_running_loop().create_future()  # a direct handling failed
        pending: asyncio.Task | None = None  # a direct handling that had to wait

        def direct(message) -> bool:
            nonlocal pending
            if (
                in_hand
                or message.get("type") not in self.direct_events
                or (pending is not None and not pending.done())
                or failed.done()
            ):
                return False
            try:
                pending = eager_start(self.dispatch(message))
            except Exception as exc:
                failed.set_exception(exc)
                return True
            if pending is not None:
                pending.add_done_callback(direct_done)
            return True

        def direct_done(handled: asyncio.Task) -> None:
            if not handled.cancelled() and handled.exception() is not None:
                if not failed.done():
                    failed.set_exception(handled.exception())

        async def handle(source):
            nonlocal in_hand, pending
            while True:
                message = await source()
                in_hand += 1
                try:
                    async with turn:
                        if pending is not None:
                            waited, pending = pending, None
                            await waited
                        await self.dispatch(message)
                finally:
                    in_hand -= 1

        readers = [asyncio.ensure_future(handle(source)) for source in sources]
        direct_set = self.direct_events and getattr(self.channel_layer, "receiver_set", None)
        if direct_set:
            direct_set(self.channel_name, direct)
        try:
            done, _ = await asyncio.wait([*readers, failed], return_when=asyncio.FIRST_COMPLETED)
            for reader in done:
                reader.result()  # what ended it: StopConsumer, or an error to surface
        except StopConsumer:
            pass
        finally:
            if direct_set:
                self.channel_layer.receiver_clear(self.channel_name)
            if pending is not None:
                readers.append(pending)
            for task in readers:
                task.cancel()
            await asyncio.wait(readers)
            failed.cancel()

    def _socket_send(self, send):
        gone = self.socket_gone_errors

        async def send_unless_gone(message):
            try:
                await send(message)
            except gone:
                pass

        return send_unless_gone

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
