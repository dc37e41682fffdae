"""The embedded mode's channel layer: channels' `InMemoryChannelLayer` with the same semantics
(per-channel capacity, message expiry, groups), made cheap enough to carry every streaming
answer's frames, and loud when it drops one.

Measured with bench/ws_load.py, channels' own class spends most of its time on bookkeeping once
many sockets are open: every `send`, `receive` and `group_send` scans every channel and every
group for expired messages (O(channels + groups) per frame, so O(N²) per second for N streams),
`group_send` starts one task per member, and every message is deep-copied. Here the expiry
sweep runs at most once per EXPIRY_SWEEP_INTERVAL, `group_send` delivers inline (and
`group_send_nowait` without a coroutine), a channel keeps its queue while its consumer receives
(channels drops and re-creates it whenever it runs empty, i.e. per message), and a message
is copied one level deep (events are flat dicts: the receiver may add or replace keys without
the sender or other receivers seeing it). A full channel still drops the message, as channels
does, but it is counted and logged: a socket missing frames recovers through `offset` + `sync`
(docs/websocket.md), and an operator sees that it had to.

A channel may have a direct receiver (`receiver_set`, chat.socket_loop): a group message for a
channel with nothing queued is offered to it first, and only queued when it declines. The
consumer then handles the message in the sender's loop turn instead of waking its reader
task for it in the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

logger = logging.getLogger(__name__)

EXPIRY_SWEEP_INTERVAL = 1.0  # seconds
DROP_LOG_INTERVAL = 10.0  # seconds between two warnings about dropped messages


class FastInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0
        self.dropped = 0  # messages a full channel refused since start (group_send)
        self._dropped_logged = 0
        self._next_drop_log = 0.0
        self.receivers: dict = {}  # channel -> direct receiver (see the module's docstring)

    def receiver_set(self, channel: str, receiver) -> None:
        """`receiver(message) -> bool` is offered every group message for `channel` that would
        find its queue empty; True when it took the message (it must not change it), False to
        have it queued as usual."""
        self.receivers[channel] = receiver

    def receiver_clear(self, channel: str) -> None:
        self.receivers.pop(channel, None)

    def _queue(self, channel: str) -> asyncio.Queue:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def _put(self, channel: str, message: dict) -> None:
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + EXPIRY_SWEEP_INTERVAL
        super()._clean_expired()

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        self._put(channel, message)

    async def receive(self, channel):
        queue = self.channels.get(channel)
        if queue is None:
            self.require_valid_channel_name(channel)
            queue = self._queue(channel)
        self._clean_expired()
        try:
            _, message = await queue.get()
        except BaseException:
            # Only a receive that is abandoned (its consumer stopped: cancelled) drops an
            # empty queue; a consumer that goes on receiving keeps its queue.
            if queue.empty() and self.channels.get(channel) is queue:
                self.channels.pop(channel, None)
            raise
        return message

    async def group_send(self, group, message):
        self.group_send_nowait(group, message)

    def group_send_nowait(self, group: str, message: dict, *, repairable: bool = False) -> None:
        """`group_send` as a plain call: delivery is inline, so a sender outside a coroutine
        (chat.generation's frame timer) needs no task to await it. (`repairable` matters to
        a layer shared by processes: chat.redis_layer.)"""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            receiver = self.receivers.get(channel)
            if receiver is not None:
                queue = self.channels.get(channel)
                if (queue is None or queue.empty()) and receiver(message):
                    continue
            try:
                self._put(channel, message)
            except ChannelFull:
                self._dropped(channel, message)

    def _dropped(self, channel: str, message: dict) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now >= self._next_drop_log:
            self._next_drop_log = now + DROP_LOG_INTERVAL
            logger.warning(
                "channel layer: %s full (capacity %s), %s message(s) dropped so far "
                "(%s since the last warning), latest %s",
                channel,
                self.get_capacity(channel),
                self.dropped,
                self.dropped - self._dropped_logged,
                message.get("type"),
            )
            self._dropped_logged = self.dropped
