"""The embedded channel layer (chat.layers): channels' in-memory semantics, cheaper."""

import asyncio

import pytest

from chat.layers import FastInMemoryChannelLayer


async def test_a_receiver_gets_every_message_in_order_across_empty_spells():
    layer = FastInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    received = []

    async def receive_all():
        while len(received) < 6:
            received.append((await layer.receive(channel))["i"])

    receiver = asyncio.create_task(receive_all())
    for i in range(6):
        if i % 2:
            layer.group_send_nowait("g", {"type": "chat.delta", "i": i})
        else:
            await layer.group_send("g", {"type": "chat.delta", "i": i})
        await asyncio.sleep(0)  # the receiver drains the queue between messages
    await asyncio.wait_for(receiver, 1)
    assert received == [0, 1, 2, 3, 4, 5]


async def test_a_direct_receiver_is_offered_what_would_find_its_queue_empty():
    """chat.socket_loop's delivery in the sender's turn: offered first, queued when declined,
    not offered while an earlier message waits in the queue (the order is kept)."""
    layer = FastInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    offered, take = [], [True]

    def receiver(message):
        offered.append(message["n"])
        return take[0]

    layer.receiver_set(channel, receiver)
    layer.group_send_nowait("g", {"type": "chat.delta", "n": 1})
    take[0] = False
    await layer.group_send("g", {"type": "chat.delta", "n": 2})
    take[0] = True
    layer.group_send_nowait("g", {"type": "chat.delta", "n": 3})
    assert offered == [1, 2]
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [2, 3]
    layer.receiver_clear(channel)
    layer.group_send_nowait("g", {"type": "chat.delta", "n": 4})
    assert offered == [1, 2] and (await layer.receive(channel))["n"] == 4


async def test_a_consumer_that_stops_receiving_leaves_no_queue_behind():
    layer = FastInMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "chat.delta"})
    await layer.receive(channel)
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    assert channel in layer.channels
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert channel not in layer.channels


async def test_invalid_channel_and_group_names_are_refused():
    layer = FastInMemoryChannelLayer()
    with pytest.raises(TypeError):
        await layer.receive("not valid!!name with spaces")
    with pytest.raises(TypeError):
        layer.group_send_nowait("not a valid group name!", {"type": "chat.delta"})
