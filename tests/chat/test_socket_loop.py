"""chat.socket_loop: a consumer's `direct_events` sent to it while it is idle go to its socket in
the sender's loop turn; otherwise, and whenever that would change their order, they wait their
turn as every other message does."""

import asyncio
import json
from types import SimpleNamespace

import pytest
from autobahn.exception import Disconnected
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import events, socket_loop
from chat.consumers import ChatConsumer
from chat.layers import FastInMemoryChannelLayer


class _Consumer(socket_loop.LeanLoopMixin, AsyncWebsocketConsumer):
    direct_events = frozenset({"test.delta", "test.slow", "test.broken"})
    release: asyncio.Event  # what `test.slow` and the client frame "hold" wait for
    hold_done = None  # called as the handling of the client frame "hold" ends

    async def connect(self):
        await self.channel_layer.group_add("g", self.channel_name)
        await self.accept()

    async def websocket_disconnect(self, message):
        # channels' own would close the database connections of a thread: none here.
        raise StopConsumer()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=f"frame {text_data} handled")
        if text_data == "hold":
            await self.release.wait()
            await self.send(text_data="hold released")
            if self.hold_done is not None:
                self.hold_done()

    async def test_delta(self, event):
        await self.send(text_data=event["text"])

    async def test_queued(self, event):  # not in direct_events
        await self.send(text_data=event["text"])

    async def test_slow(self, event):
        await self.release.wait()
        await self.send(text_data=event["text"])

    async def test_broken(self, event):
        raise ValueError("this handler is broken")


@pytest.fixture
def layer(monkeypatch):
    made = FastInMemoryChannelLayer()
    monkeypatch.setattr(socket_loop, "get_channel_layer", lambda alias: made)
    return made


class _Socket:
    """The consumer served as an ASGI application: `sent` is what reached the socket."""

    def __init__(self, consumer_class=_Consumer):
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[str] = []
        consumer_class.release = asyncio.Event()
        self.release = consumer_class.release
        app = consumer_class.as_asgi()
        scope = {"type": "websocket", "path": "/ws/test/", "headers": [], "subprotocols": []}
        self.task = asyncio.ensure_future(app(scope, self.incoming.get, self._send))

    async def _send(self, message):
        if message["type"] == "websocket.send":
            self.sent.append(message["text"])

    async def open(self):
        await self.incoming.put({"type": "websocket.connect"})
        for _ in range(50):
            await asyncio.sleep(0)
        assert not self.task.done()

    async def frame(self, text):
        await self.incoming.put({"type": "websocket.receive", "text": text})

    async def close(self):
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 2)


async def _turns(n=20):
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_direct_event_reaches_the_socket_before_the_send_returns(layer):
    socket = _Socket()
    await socket.open()
    layer.group_send_nowait("g", {"type": "test.delta", "text": "one"})
    assert socket.sent == ["one"]  # no loop turn in between
    layer.group_send_nowait("g", {"type": "test.queued", "text": "two"})
    assert socket.sent == ["one"]  # not a direct event: read by the consumer's reader
    await _turns()
    assert socket.sent == ["one", "two"]
    await socket.close()


async def test_events_wait_for_a_frame_being_handled_and_keep_their_order(layer):
    socket = _Socket()
    await socket.open()
    await socket.frame("hold")
    await _turns()
    assert socket.sent == ["frame hold handled"]
    for text in ("a", "b", "c"):
        layer.group_send_nowait("g", {"type": "test.delta", "text": text})
    await _turns()
    assert socket.sent == ["frame hold handled"]
    socket.release.set()
    await _turns()
    assert socket.sent == ["frame hold handled", "hold released", "a", "b", "c"]
    layer.group_send_nowait("g", {"type": "test.delta", "text": "d"})  # idle again: at once
    assert socket.sent[-1] == "d"
    await socket.close()


async def test_an_event_does_not_overtake_one_taken_from_the_queue_and_waiting_its_turn(layer):
    """Once the frame's handling ends, the reader holding "a" is woken; a send in between
    (here a callback queued just before) finds the turn free but "a" in hand, and waits."""
    socket = _Socket()
    await socket.open()
    loop = asyncio.get_running_loop()
    _Consumer.hold_done = staticmethod(
        lambda: loop.call_soon(layer.group_send_nowait, "g", {"type": "test.delta", "text": "b"})
    )
    try:
        await socket.frame("hold")
        await _turns()
        layer.group_send_nowait("g", {"type": "test.delta", "text": "a"})
        await _turns()  # the reader takes "a" from the queue and waits for the turn
        socket.release.set()
        await _turns()
    finally:
        _Consumer.hold_done = None
    assert socket.sent == ["frame hold handled", "hold released", "a", "b"]
    await socket.close()


async def test_a_direct_handling_that_has_to_wait_holds_back_what_comes_after_it(layer):
    socket = _Socket()
    await socket.open()
    layer.group_send_nowait("g", {"type": "test.slow", "text": "slow"})
    layer.group_send_nowait("g", {"type": "test.delta", "text": "fast"})
    await socket.frame("hello")
    await _turns()
    assert socket.sent == []
    socket.release.set()
    await _turns()
    assert socket.sent == ["slow", "fast", "frame hello handled"]
    await socket.close()


async def test_a_failing_direct_handling_ends_the_consumer_with_its_error(layer):
    socket = _Socket()
    await socket.open()
    layer.group_send_nowait("g", {"type": "test.broken"})
    with pytest.raises(ValueError, match="broken"):
        await asyncio.wait_for(socket.task, 2)
    assert layer.receivers == {}  # nothing more is offered to it


async def test_a_closed_consumer_is_no_longer_offered_events(layer):
    socket = _Socket()
    await socket.open()
    channel = next(iter(layer.receivers))
    await socket.close()
    assert channel not in layer.receivers


class _ChatOnConversation7(ChatConsumer):
    async def connect(self):
        await super().connect()
        self.conversations.add(7)  # subscribed (without the database the real frame needs)
        await self.channel_layer.group_add(events.conversation_group(7), self.channel_name)

    async def websocket_disconnect(self, message):
        # channels' own would close the database connections of a thread: none here.
        await self.disconnect(message["code"])
        raise StopConsumer()


class _ChatSocket(_Socket):
    """A chat socket whose browser can go away (a reload) before the server hears of it:
    the server then refuses to send on it, as daphne does."""

    def __init__(self, refusal: Exception):
        self.refusal = refusal
        self.gone = False
        self.incoming = asyncio.Queue()
        self.sent = []
        user = SimpleNamespace(pk=1, is_authenticated=True, language="")
        scope = {"type": "websocket", "path": "/ws/chat/", "headers": [], "subprotocols": []}
        app = _ChatOnConversation7.as_asgi()
        self.task = asyncio.ensure_future(
            app({**scope, "user": user}, self.incoming.get, self._send)
        )

    async def _send(self, message):
        if self.gone:
            raise self.refusal
        await super()._send(message)


def _delta(text):
    return events.delta(conversation_id=7, message_id=1, offset=0, text=text)


async def test_a_delta_for_a_socket_the_browser_has_left_is_dropped_quietly(layer):
    socket = _ChatSocket(Disconnected("Attempt to send on a closed protocol"))
    await socket.open()
    layer.group_send_nowait(events.conversation_group(7), _delta("one"))
    assert len(socket.sent) == 1
    socket.gone = True  # reloaded: the deltas still on their way find the socket closed
    layer.group_send_nowait(events.conversation_group(7), _delta("two"))  # in the sender's turn
    await socket.frame(json.dumps({"type": "ping"}))  # and through the consumer's reader
    await _turns()
    assert not socket.task.done()  # no error ended it; its disconnect does
    await socket.close()
    assert socket.task.result() is None
    assert len(socket.sent) == 1


async def test_any_other_failure_to_send_still_ends_the_consumer(layer):
    socket = _ChatSocket(ValueError("a broken frame"))
    await socket.open()
    socket.gone = True
    layer.group_send_nowait(events.conversation_group(7), _delta("one"))
    with pytest.raises(ValueError):
        await asyncio.wait_for(socket.task, 2)
