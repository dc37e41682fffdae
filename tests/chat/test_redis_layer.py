"""The services mode's channel layer against a real Redis: group messages sent together go out
in one pipeline, in order, each sender returning once its message is published."""

import asyncio
import os
import uuid

import pytest

from chat.redis_layer import PipelinedRedisPubSubChannelLayer

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis (services mode: REDIS_URL)"
)


@pytest.fixture
async def layers():
    """Two layers, as two server processes would have: one sends, the other receives."""
    made = [
        PipelinedRedisPubSubChannelLayer(hosts=[os.environ["REDIS_URL"]]),
        PipelinedRedisPubSubChannelLayer(hosts=[os.environ["REDIS_URL"]]),
    ]
    yield made
    for layer in made:
        await layer.flush()


async def _connected_group(sender, receiver) -> tuple[str, str]:
    """A group the receiver listens on, after one message went through (both connected)."""
    group = f"test-{uuid.uuid4().hex}"
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)
    await sender.group_send(group, {"type": "chat.delta", "n": -1})
    await receiver.receive(channel)
    return group, channel


async def test_many_group_messages_arrive_whole_and_in_order(layers):
    sender, receiver = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await receiver.new_channel()
    await receiver.group_add(group, channel)

    await asyncio.gather(
        *(sender.group_send(group, {"type": "chat.delta", "n": n}) for n in range(300))
    )
    received = [await asyncio.wait_for(receiver.receive(channel), 5) for _ in range(300)]

    assert [m["n"] for m in received] == list(range(300))


async def test_a_send_while_a_pipeline_is_out_waits_for_the_next_one(layers, monkeypatch):
    sender, receiver = layers
    group, channel = await _connected_group(sender, receiver)

    from chat import redis_layer

    pipelines = []
    real_send = redis_layer._Publisher._send

    async def counted(self, batch):
        pipelines.append(len(batch))
        return await real_send(self, batch)

    monkeypatch.setattr(redis_layer._Publisher, "_send", counted)
    first = asyncio.ensure_future(sender.group_send(group, {"type": "chat.delta", "n": 0}))
    await asyncio.sleep(0)  # the first pipeline is on its way
    rest = [sender.group_send(group, {"type": "chat.delta", "n": n}) for n in range(1, 6)]
    await asyncio.gather(first, *rest)

    assert pipelines == [1, 5]
    assert [(await receiver.receive(channel))["n"] for _ in range(6)] == list(range(6))


async def test_subscribing_does_not_wait_for_a_pipeline_on_its_way(layers):
    """Every answer that starts subscribes its control channel; with many answers streaming
    there is always a pipeline of frames out. CLIENT PAUSE WRITE holds PUBLISH (not SUBSCRIBE)
    on the server, so a pipeline stays out while the subscription is made."""
    import redis.asyncio as redis

    sender, receiver = layers
    group, channel = await _connected_group(sender, receiver)
    admin = redis.from_url(os.environ["REDIS_URL"])
    await admin.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
    try:
        publishing = asyncio.ensure_future(sender.group_send(group, {"type": "chat.delta", "n": 0}))
        await asyncio.sleep(0.1)  # its pipeline is out, held by the pause
        control = await sender.new_channel()
        await asyncio.wait_for(sender.group_add(f"test-{uuid.uuid4().hex}", control), 2)

        assert not publishing.done()
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    await publishing
    assert (await asyncio.wait_for(receiver.receive(channel), 5))["n"] == 0


# --- This process first: its own members get messages without a round trip ----------------


@pytest.fixture
async def writes_paused():
    """PUBLISH held on the Redis server (CLIENT PAUSE WRITE) until the block ends."""
    import redis.asyncio as redis

    admin = redis.from_url(os.environ["REDIS_URL"])

    class Paused:
        async def __aenter__(self):
            await admin.execute_command("CLIENT", "PAUSE", "5000", "WRITE")

        async def __aexit__(self, *exc):
            await admin.execute_command("CLIENT", "UNPAUSE")

    yield Paused()
    await admin.aclose()


async def _nothing_more(layer, channel, wait=0.3):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), wait)


async def test_a_member_in_this_process_gets_a_group_message_at_once_and_once(
    layers, writes_paused
):
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)

    async with writes_paused:
        sent = asyncio.ensure_future(layer.group_send(group, {"type": "chat.delta", "n": 1}))
        received = await asyncio.wait_for(layer.receive(channel), 1)
        assert not sent.done(), "the publish for other processes is still held"
    await sent

    assert received == {"type": "chat.delta", "n": 1}
    await _nothing_more(layer, channel)  # the copy Redis echoed back was dropped


async def test_a_message_for_a_channel_of_this_process_skips_redis(layers, writes_paused):
    layer, _ = layers
    channel = await layer.new_channel()
    async with writes_paused:
        await asyncio.wait_for(layer.send(channel, {"type": "chat.snapshot", "text": "x"}), 1)
        assert await asyncio.wait_for(layer.receive(channel), 1) == {
            "type": "chat.snapshot",
            "text": "x",
        }


async def test_a_direct_receiver_takes_a_member_s_message_when_nothing_waits_for_it(
    layers, writes_paused
):
    """chat.socket_loop's delivery in the sender's turn: offered first, queued when declined,
    not offered while an earlier message waits in the queue (the order is kept); the publish
    for other processes goes on all the same."""
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    offered, take = [], [True]

    def receiver(message):
        offered.append(message["n"])
        return take[0]

    layer.receiver_set(channel, receiver)
    async with writes_paused:
        layer.group_send_nowait(group, {"type": "chat.delta", "n": 1})
        assert offered == [1]  # taken in the sender's call
        take[0] = False
        layer.group_send_nowait(group, {"type": "chat.delta", "n": 2})
        take[0] = True
        layer.group_send_nowait(group, {"type": "chat.delta", "n": 3})
        assert offered == [1, 2]  # 2 waits in the queue: 3 goes behind it
        assert [(await layer.receive(channel))["n"] for _ in range(2)] == [2, 3]
    layer.receiver_clear(channel)
    layer.group_send_nowait(group, {"type": "chat.delta", "n": 4})
    assert offered == [1, 2] and (await layer.receive(channel))["n"] == 4
    await _nothing_more(layer, channel)  # what Redis echoed back of 1-4 was dropped


async def test_receivers_get_their_own_copy(layers):
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(group, first)
    await layer.group_add(group, second)
    await layer.group_send(group, {"type": "chat.delta", "n": 1})

    mine = await layer.receive(first)
    mine["n"] = 2
    assert (await layer.receive(second))["n"] == 1


async def test_a_message_sent_from_another_loop_of_the_process_reaches_this_one(layers):
    """A sync caller (a service after commit, a Celery task) sends through `async_to_sync`,
    on a loop of its own: that is not an echo of this loop's publish."""
    from asgiref.sync import async_to_sync

    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.1)  # subscribed on the server

    await asyncio.to_thread(async_to_sync(layer.group_send), group, {"type": "chat.x", "n": 7})

    assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 7


# --- Frames are published only while another process listens ---------------------------


@pytest.fixture
def published(monkeypatch):
    """The payload count of every pipeline sent to Redis, by channel."""
    from chat import redis_layer

    sent: list[str] = []
    real_send = redis_layer._Publisher._send

    async def counted(self, batch):
        sent.extend(channel for channel, _payload, _done in batch)
        return await real_send(self, batch)

    monkeypatch.setattr(redis_layer._Publisher, "_send", counted)
    return sent


async def _alone_in(layer, group) -> str:
    """A member of `group` in `layer`, after a publish showed that no one else listens."""
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.1)  # subscribed on the server
    await layer.group_send(group, {"type": "chat.generation_started"})
    await layer.receive(channel)
    return channel


def _group_channel(layer, group):
    return layer._get_layer()._get_group_channel_name(group)


async def test_frames_stay_in_the_process_while_no_other_listens(layers, published):
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await _alone_in(layer, group)
    before = published.count(_group_channel(layer, group))

    for n in range(5):
        layer.group_send_nowait(group, {"type": "chat.delta", "n": n}, repairable=True)
    await layer.group_send(group, {"type": "chat.generation_finished"})

    assert [(await layer.receive(channel)).get("n") for _ in range(6)] == [0, 1, 2, 3, 4, None]
    # Only generation_finished went to Redis: it is not repairable.
    assert published.count(_group_channel(layer, group)) == before + 1


async def test_frames_are_published_once_another_process_joins_and_not_after_it_left(
    layers, published, monkeypatch
):
    from chat import redis_layer

    monkeypatch.setattr(redis_layer, "PROBE_INTERVAL", 60.0)  # only the hello can tell
    sender, other = layers
    group = f"test-{uuid.uuid4().hex}"
    await _alone_in(sender, group)
    remote = await other.new_channel()
    await other.group_add(group, remote)  # says hello

    async def frames_reach_the_other():
        n = 0
        while True:
            sender.group_send_nowait(group, {"type": "chat.delta", "n": n}, repairable=True)
            n += 1
            try:
                return await asyncio.wait_for(other.receive(remote), 0.05)
            except TimeoutError:
                continue

    assert (await asyncio.wait_for(frames_reach_the_other(), 3))["type"] == "chat.delta"

    await other.group_discard(group, remote)
    await asyncio.sleep(0.1)  # unsubscribed on the server
    await sender.group_send(group, {"type": "chat.snapshot"})  # counted: no one else
    count = published.count(_group_channel(sender, group))
    sender.group_send_nowait(group, {"type": "chat.delta", "n": -1}, repairable=True)
    await sender.group_send(group, {"type": "chat.generation_finished"})
    assert published.count(_group_channel(sender, group)) == count + 1


async def test_a_listener_that_said_no_hello_is_found_by_a_probe(layers, monkeypatch):
    """Another listener whose hello was missed (here: a plain Redis subscription, which sends
    none) gets a frame within PROBE_INTERVAL, and every frame once that probe counted it."""
    import redis.asyncio as redis

    from chat import redis_layer

    monkeypatch.setattr(redis_layer, "PROBE_INTERVAL", 0.2)
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    await _alone_in(layer, group)
    plain = redis.from_url(os.environ["REDIS_URL"])
    subscription = plain.pubsub()
    await subscription.subscribe(_group_channel(layer, group))
    try:
        received = []

        async def drain(timeout=0.0):
            while message := await subscription.get_message(
                ignore_subscribe_messages=True, timeout=timeout
            ):
                received.append(layer.deserialize(message["data"])["n"])
                if received[-1] == 19:
                    return

        for n in range(20):
            layer.group_send_nowait(group, {"type": "chat.delta", "n": n}, repairable=True)
            await asyncio.sleep(0.05)
            await drain()
        if received and received[-1] != 19:
            await asyncio.wait_for(drain(timeout=1.0), 5)
    finally:
        await subscription.aclose()
        await plain.aclose()

    assert received, "a probe reached the other listener"
    assert received[0] <= 5, "within PROBE_INTERVAL (0.2 s) of frames every 0.05 s"
    assert received == list(range(received[0], 20))


async def test_while_publishing_fails_frames_reach_local_members_and_few_are_tried(
    layers, monkeypatch, caplog
):
    """Redis unreachable (every pipeline fails): this process's member still gets each frame;
    the frames are tried once a PROBE_INTERVAL, not each in turn, and the failures are
    reported once a FAILURE_LOG_INTERVAL with their count."""
    import logging

    from chat import redis_layer

    monkeypatch.setattr(redis_layer, "PROBE_INTERVAL", 60.0)
    monkeypatch.setattr(redis_layer, "_failure_logged_at", float("-inf"))
    monkeypatch.setattr(redis_layer, "_failures_unlogged", 0)
    layer, _ = layers
    group = f"test-{uuid.uuid4().hex}"
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.1)  # subscribed, its hello published
    tried = []

    async def refused(self, batch):
        tried.extend(channel for channel, _payload, _done in batch)
        raise ConnectionError("Error 111 connecting to Redis. Connection refused.")

    monkeypatch.setattr(redis_layer._Publisher, "_send", refused)
    with caplog.at_level(logging.ERROR, logger="chat.redis_layer"):
        for n in range(20):
            layer.group_send_nowait(group, {"type": "chat.delta", "n": n}, repairable=True)
            await asyncio.sleep(0.01)
        with pytest.raises(ConnectionError):  # not repairable: its sender is told
            await layer.group_send(group, {"type": "chat.generation_finished"})

    received = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(21)]
    assert [m.get("n") for m in received] == [*range(20), None]
    # The first delta and generation_finished were tried; the other 19 deltas were not.
    assert tried == [_group_channel(layer, group)] * 2
    assert caplog.text.count("publishing a channel layer message failed") == 1
