"""The services mode's channel layer: channels_redis' pub/sub layer, delivering to this
process's own channels directly and publishing group messages in pipelines.

Local first. An answer's generation runs in the process whose socket asked for it, so most of
the frames a process sends are for its own sockets. channels_redis sends each of them through
Redis and back: serialized, published, read back from the subscription, parsed by redis-py,
queued and deserialized, with a round trip on the way to every first token. Here a message
for a channel of this process is put straight into that channel's queue (one level copied on
receipt, as in chat.layers), and a group message goes to this process's members at once; it
is published as well, for the members other processes have, and the copy that Redis echoes
back to this process is recognised by its origin (each payload starts with the sending
loop layer's random id) and skipped, so local members get each message once.

Published only when heard. Publishing an answer's deltas and reading each back cost the
process about a fifth of its CPU with 200 answers streaming, mostly for nobody: a delta is
published only while another process may listen to the group. A loop layer that starts
listening to a group publishes a hello on it; each publish's result (how many subscriptions
received it) says whether anyone but this process listens; and while no one does, one delta a
PROBE_INTERVAL is published anyway, in case a hello was missed. Only deltas are left out
(`repairable`): a tab that missed some sees the gap in `offset` and asks for a snapshot.
Every other event is always published. A publish that failed (Redis unreachable) counts as
heard by no one: while Redis is down, an answer tries one delta a PROBE_INTERVAL, and this
process's tabs get every frame all the same.

Pipelines. channels_redis publishes every message on its own, under the shard's lock: one
Redis round trip after another. Here the group messages sent while a pipeline is on its way
go out together in the next one, without the shard's lock held meanwhile. `group_send`
returns once its message is published; `group_send_nowait` (what chat.generation uses for an
answer's frames, as with the in-memory layer) delivers locally and queues the publish, and
logs a failed one: a remote tab that misses a frame sees a gap in `offset` and asks for a
snapshot (docs/websocket.md). Local delivery offers a message to the channel's direct
receiver first, as the in-memory layer does (chat.layers, `receiver_set`).

This reaches into channels_redis' per-loop layer and shard objects (`_get_layer`, the loop
layer's `channels`, `groups`, `_shards`, `_get_group_channel_name`, `_get_shard`; the shard's
`_lock`, `_ensure_redis`, `_redis`, `_subscribed_to` and `_receive_message`), as of
channels-redis 4.2-4.x (pinned below 5 in pyproject.toml). The services-mode tests stream
through it, two processes included.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

ORIGIN_BYTES = 16  # a uuid4: the sending loop layer's id, in front of every payload it publishes
# Published (after the origin) by a loop layer that starts listening to a group; no serialized
# message is these bytes (a message is a dict: msgpack starts it with 0x80-0x8f or 0xde-0xdf).
HELLO = b"\x00hello"
# A group whose only listeners were this process's members is asked again (one repairable
# message published anyway) after this long, in case a hello was missed.
PROBE_INTERVAL = 1.0  # seconds


class _Publisher:
    """One per shard connection (and so per event loop): the messages waiting for the next
    pipeline, and the task sending them."""

    def __init__(self, shard):
        self._shard = shard
        self._waiting: list[tuple[str, bytes, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    def enqueue(self, channel: str, payload: bytes) -> asyncio.Future:
        """Queue a publish; the future completes once it is published (or failed), with the
        number of subscriptions that received it."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((channel, payload, done))
        if self._task is None:
            self._task = loop.create_task(self._run())
        return done

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._send(batch)
                except Exception as exc:
                    for _channel, _payload, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for (_channel, _payload, done), receivers in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(receivers)
        finally:
            self._task = None

    async def _send(self, batch) -> list[int]:
        shard = self._shard
        # The shard's lock guards the creation (and, on flush, the closing) of its client, so
        # it is taken for that, as channels_redis' own publish does. It is not held for the
        # round trip: subscribing (`group_add`, on the shard's pub/sub connection) takes the
        # same lock, and every answer that starts subscribes its control channel, which
        # then waited for a pipeline of every other answer's frames to come back first.
        async with shard._lock:
            shard._ensure_redis()
            redis = shard._redis
        pipeline = redis.pipeline(transaction=False)  # on a connection of the client's pool
        for channel, payload, _done in batch:
            pipeline.publish(channel, payload)
        return await pipeline.execute()  # each PUBLISH: how many subscriptions received it


_publishers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _publisher(shard) -> _Publisher:
    publisher = _publishers.get(shard)
    if publisher is None:
        publisher = _publishers[shard] = _Publisher(shard)
    return publisher


# While Redis is unreachable every publish fails: one report (with its traceback) per this
# many seconds, counting the failures in between, rather than one per frame.
FAILURE_LOG_INTERVAL = 10.0  # seconds
_failure_logged_at = float("-inf")
_failures_unlogged = 0


def _publish_failure_log(done: asyncio.Future) -> None:
    global _failure_logged_at, _failures_unlogged
    if done.cancelled() or done.exception() is None:
        return
    now = time.monotonic()
    if now - _failure_logged_at < FAILURE_LOG_INTERVAL:
        _failures_unlogged += 1
        return
    logger.error(
        "publishing a channel layer message failed (and %d more since the last report)",
        _failures_unlogged,
        exc_info=done.exception(),
    )
    _failure_logged_at, _failures_unlogged = now, 0


class _EchoSkippingShard(RedisSingleShardConnection):
    """A shard connection that drops what its loop layer published itself (its local members
    had it when it was sent) and takes another process's hello as news that it listens."""

    # `channel_layer`, as channels_redis names it, is the loop layer (_LoopLayer).

    def _receive_message(self, message):
        if message is not None:
            data = message["data"]
            if data[:ORIGIN_BYTES] == self.channel_layer.origin:
                return
            if data[ORIGIN_BYTES:] == HELLO:
                name = message["channel"]
                self.channel_layer.others_heard(name.decode() if isinstance(name, bytes) else name)
                return
        super()._receive_message(message)


class _LoopLayer(RedisPubSubLoopLayer):
    """channels_redis' layer of one event loop, with an origin of its own (a process can run
    several loops, the server's and a sync caller's `async_to_sync`, and what one of them
    publishes must reach the others' channels), and what it knows of the other listeners of
    the groups it has members in: `_others[group channel] = (whether others listen, when that
    was learned)`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.origin = uuid.uuid4().bytes
        self._shards = [_EchoSkippingShard(s.host, self) for s in self._shards]
        self._others: dict[str, tuple[bool, float]] = {}
        self.receivers: dict = {}  # channel -> direct receiver (chat.layers, `receiver_set`)

    def payload(self, message: dict) -> bytes:
        return self.origin + self.channel_layer.serialize(message)

    async def send(self, channel, message):
        queue = self.channels.get(channel)
        if queue is not None:  # a channel of this loop: no other process or loop has it
            queue.put_nowait(message)
            return
        await self._get_shard(channel).publish(channel, self.payload(message))

    async def group_add(self, group, channel):
        group_channel = self._get_group_channel_name(group)
        first = group_channel not in self.groups
        await super().group_add(group, channel)
        if first:
            # Subscribed: tell whoever publishes to the group that it has a listener here
            # (queued, not awaited: subscribing never waits for a pipeline of frames).
            shard = self._get_shard(group_channel)
            hello = _publisher(shard).enqueue(group_channel, self.origin + HELLO)
            hello.add_done_callback(_publish_failure_log)

    async def group_discard(self, group, channel):
        await super().group_discard(group, channel)
        group_channel = self._get_group_channel_name(group)
        if group_channel not in self.groups:
            self._others.pop(group_channel, None)

    async def flush(self):
        self._others = {}
        await super().flush()

    def others_heard(self, group_channel: str) -> None:
        if group_channel in self.groups:
            self._others[group_channel] = (True, time.monotonic())

    def others_count(self, group_channel: str, done: asyncio.Future, *, subscribed: bool) -> None:
        """Learn from a publish to the group, once it is done, whether others listen: its
        result is how many subscriptions received it, this loop's own among them if it was
        `subscribed` when the publish was sent."""
        asked_at = time.monotonic()

        def counted(done: asyncio.Future) -> None:
            if done.cancelled() or group_channel not in self.groups:
                return
            known = self._others.get(group_channel)
            if known is not None and known[1] > asked_at:
                return  # a hello came after this publish was sent: that is the newer news
            # A failed publish (Redis unreachable) reached no one: the next frames wait for
            # a probe as well, rather than each trying (and failing) in turn.
            heard = done.exception() is None and done.result() > subscribed
            self._others[group_channel] = (heard, asked_at)

        done.add_done_callback(counted)

    def others_may_listen(self, group_channel: str) -> bool:
        others, learned = self._others.get(group_channel, (True, 0.0))
        return others or time.monotonic() - learned >= PROBE_INTERVAL


class PipelinedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer

    def deserialize(self, message):
        if isinstance(message, dict):  # delivered in this process: a copy for this receiver
            return dict(message)
        return super().deserialize(message[ORIGIN_BYTES:])

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        await self._get_layer().send(channel, message)

    def receiver_set(self, channel: str, receiver) -> None:
        """As chat.layers' `receiver_set`, for the group messages sent by this process."""
        self._get_layer().receivers[channel] = receiver

    def receiver_clear(self, channel: str) -> None:
        self._get_layer().receivers.pop(channel, None)

    async def group_send(self, group, message):
        await self._group_send(group, message, repairable=False)

    def group_send_nowait(self, group: str, message: dict, *, repairable: bool = False) -> None:
        """`group_send` as a plain call: this process's members have the message when it
        returns; its publish for the other processes is queued (and logged if it fails).

        `repairable`: the receivers repair the loss of this message themselves (an answer's
        delta: a gap in `offset` makes a client ask for a snapshot), so it is not published
        while this process's members are the group's only listeners."""
        done = self._group_send(group, message, repairable=repairable)
        if done is not None:
            done.add_done_callback(_publish_failure_log)

    def _group_send(self, group: str, message: dict, *, repairable: bool):
        assert isinstance(message, dict), "message is not a dict"
        layer = self._get_layer()
        channel = layer._get_group_channel_name(group)
        members = layer.groups.get(channel)
        if members:
            for name in tuple(members):  # a direct receiver may change the group
                queue = layer.channels.get(name)
                if queue is not None:
                    receiver = layer.receivers.get(name)
                    if receiver is not None and queue.empty() and receiver(message):
                        continue
                    queue.put_nowait(message)
            if repairable and not layer.others_may_listen(channel):
                return None
        shard = layer._get_shard(channel)
        done = _publisher(shard).enqueue(channel, layer.payload(message))
        if members:
            layer.others_count(channel, done, subscribed=channel in shard._subscribed_to)
        return done
