"""The services mode's channel layer: channels_redis' pub/sub layer, publishing group messages
in pipelines.

channels_redis publishes every message on its own, under the shard's lock: one Redis round
trip after another, so with many answers streaming every frame of the process waited for all
the frames queued before it, and each paid a lock hand-over and a round trip. Here the group
messages sent while a pipeline is on its way go out together in the next one (one round
trip for all of them), without the shard's lock held meanwhile; each sender still returns only
once its message is published, so the chat's coalescer keeps its back-pressure
(docs/websocket.md). Everything else (subscriptions, direct sends, receiving) is
channels_redis' own.

This reaches into channels_redis' per-loop layer and shard objects (`_get_layer`,
`_get_group_channel_name`, `_get_shard`, the shard's `_lock`, `_ensure_redis` and `_redis`),
as of channels-redis 4.2-4.x (pinned below 5 in pyproject.toml). The services-mode tests
stream through it, two processes included.
"""

from __future__ import annotations

import asyncio
import weakref

from channels_redis.pubsub import RedisPubSubChannelLayer


class _Publisher:
    """One per shard connection (and so per event loop): the messages waiting for the next
    pipeline, and the task sending them."""

    def __init__(self, shard):
        self._shard = shard
        self._waiting: list[tuple[str, bytes, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def publish(self, channel: str, payload: bytes) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.append((channel, payload, done))
        if self._task is None:
            self._task = loop.create_task(self._run())
        await done

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._send(batch)
                except Exception as exc:
                    for _channel, _payload, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _channel, _payload, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._task = None

    async def _send(self, batch) -> None:
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
        await pipeline.execute()


_publishers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PipelinedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    async def group_send(self, group, message):
        layer = self._get_layer()
        channel = layer._get_group_channel_name(group)
        shard = layer._get_shard(channel)
        publisher = _publishers.get(shard)
        if publisher is None:
            publisher = _publishers[shard] = _Publisher(shard)
        await publisher.publish(channel, self.serialize(message))
