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
        await real_send(self, batch)

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
