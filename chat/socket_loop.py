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

Only channels is imported here: bench/ws_floor.py relays through the same loop without AURAX's
apps.
"""

from __future__ import annotations

import asyncio
import functools

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper


class LeanLoopMixin:
    """Put first in the bases of a channels consumer class."""

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
        self.base_send = wrapper.real_send if isinstance(wrapper, InstanceSessionWrapper) else send
        turn = asyncio.Lock()

        async def handle(source):
            while True:
                message = await source()
                async with turn:
                    await self.dispatch(message)

        readers = [asyncio.ensure_future(handle(source)) for source in sources]
        try:
            done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for reader in done:
                reader.result()  # what ended it: StopConsumer, or an error to surface
        except StopConsumer:
            pass
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.wait(readers)

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
