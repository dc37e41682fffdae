"""How an answer starts: its generation starts in the loop turn the action's database hop
returns in, after the socket that asked has joined the conversation (chat.consumers
`_answer_start`, chat.generation `generation_start_on`)."""

import asyncio
import threading

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from aurax import db_threads
from billing import tokens
from chat import consumers, generation
from chat.consumers import ChatConsumer
from chat.models import Message
from providers.types import Message as PromptMessage
from tests.chat.helpers import frames_until, of_type, socket_for, streamed_text
from tests.factories import UserFactory
from tests.gateway.conftest import model_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


async def test_the_generation_calls_the_upstream_in_the_turn_the_hop_returns_in(
    alice, credential, fake_upstream, monkeypatch
):
    """A callback that the database thread queues right after the send's result (and so
    runs in the same loop turn as what that result starts, nothing in between) finds the
    socket in the new conversation's group and the generation's request sent, waiting for
    the upstream's response as the generation's own task. A generation woken by an asyncio
    future would not have started yet: that wake-up comes a turn later, behind every
    callback queued meanwhile."""
    loop = asyncio.get_running_loop()
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=3", "model": model_for(credential)}
    )
    await frames_until(socket, of_type("generation_finished"))
    await generation.generations_wait()  # its upstream connection is back in the pool

    waiting_for_headers: list[asyncio.Task] = []
    real_response_start = aiohttp.ClientResponse.start

    async def response_start(self, connection):  # the request has been written
        waiting_for_headers.append(asyncio.current_task())
        return await real_response_start(self, connection)

    seen: dict = {}
    real_start_on = generation.generation_start_on

    def start_on(hop, subscribe):
        outcome = real_start_on(hop, subscribe)

        def look():
            seen["conversations"] = set(subscribe.__self__.conversations)
            seen["waiting_for_headers"] = list(waiting_for_headers)
            seen["generations"] = set(generation._tasks)

        hop.add_done_callback(lambda _hop: loop.call_soon_threadsafe(look))
        return outcome

    monkeypatch.setattr(aiohttp.ClientResponse, "start", response_start)
    monkeypatch.setattr(generation, "generation_start_on", start_on)
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=20 @delay=0.002", "model": model_for(credential)}
    )
    frames = await frames_until(socket, of_type("generation_finished"))
    assert len(seen["conversations"]) == 2, "joined the new conversation in that turn"
    assert frames[0]["conversation_id"] in seen["conversations"]
    assert len(seen["waiting_for_headers"]) == 1, "the upstream request left in that turn"
    assert seen["waiting_for_headers"][0] in seen["generations"]
    assert frames[-1]["status"] == "complete"
    assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 21)]
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_send_whose_socket_closes_before_its_hop_runs_is_answered_all_the_same(
    alice, credential, fake_upstream
):
    """Every database thread is held, so the send's hop waits in the queue; the socket that
    sent it closes meanwhile. The message is not lost: once the threads are free the answer
    is generated and saved whole, as when every tab closes mid-stream."""
    threads = db_threads._threads()
    running, release = threading.Semaphore(0), threading.Event()

    def hold():
        running.release()
        release.wait(10)

    held = [db_threads.db_submit(hold) for _ in range(threads)]
    try:
        for _ in range(threads):
            assert await asyncio.to_thread(running.acquire, True, 5)
        socket, _, _ = await socket_for(alice)
        await socket.send_json_to(
            {"type": "send", "content": "@tokens=12 @delay=0.001", "model": model_for(credential)}
        )
        for _ in range(500):  # until the frame is read and its hop queued
            if any(entry[2][2] is consumers._started for entry in db_threads._queued):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the send's hop was never queued")
        await socket.disconnect()
        assert not await Message.objects.aexists(), "the hop has not run"
    finally:
        release.set()
        for future in held:
            await asyncio.wrap_future(future)
    # generations_wait (graceful shutdown) waits for it too, from before its hop returns.
    await asyncio.wait_for(generation.generations_wait(), 10)
    answer = await Message.objects.aget(role=Message.Role.ASSISTANT)
    assert answer.status == Message.Status.COMPLETE
    assert answer.content.split() == [f"tok{i}" for i in range(1, 13)]


async def test_the_generation_waits_for_the_socket_to_join_the_conversation(
    alice, credential, fake_upstream, monkeypatch
):
    """The socket's subscription is held back (as a Redis round trip under load would be):
    the generation spawned for its send does not call the upstream nor publish anything
    before the socket is in the conversation's group, so the socket misses no frame."""
    joined = asyncio.Event()
    real_subscribe = ChatConsumer._subscribe

    async def slow_subscribe(self, conversation_id):
        await joined.wait()
        await real_subscribe(self, conversation_id)

    monkeypatch.setattr(ChatConsumer, "_subscribe", slow_subscribe)
    socket, _, _ = await socket_for(alice)
    fake_upstream.requests.clear()
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=30 @delay=0.002", "model": model_for(credential)}
    )
    for _ in range(100):
        if await Message.objects.filter(role=Message.Role.ASSISTANT).aexists():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert not fake_upstream.requests, "no upstream call before the socket has joined"
    joined.set()
    frames = await frames_until(socket, of_type("generation_finished"))
    assert [f["type"] for f in frames][:2] == ["conversation_created", "generation_started"]
    assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 31)]
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_refused_send_leaves_no_generation_behind(alice, credential, fake_upstream):
    """The hop raises (another user's conversation): the socket gets the refusal, the task
    spawned for the answer ends without one, and the upstream is never called."""
    bob = await sync_to_async(UserFactory)()
    owner, _, _ = await socket_for(bob)
    await owner.send_json_to(
        {"type": "send", "content": "@tokens=3", "model": model_for(credential)}
    )
    started = (await frames_until(owner, of_type("generation_finished")))[0]
    await generation.generations_wait()
    messages = await Message.objects.acount()
    fake_upstream.requests.clear()

    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {"type": "send", "conversation_id": started["conversation_id"], "content": "hi"}
    )
    reply = await socket.receive_json_from(timeout=3)
    assert reply["type"] == "error" and reply["code"] == "not_found"
    await asyncio.wait_for(generation.generations_wait(), 3)
    assert not generation._tasks
    assert await Message.objects.acount() == messages
    assert not fake_upstream.requests
    await socket.disconnect()
    await owner.disconnect()


async def test_a_finished_answer_s_count_is_taken_by_the_next_send_s_estimate(
    alice, credential, fake_upstream
):
    """The next send's admission estimates the history's tokens before the upstream call;
    for the answer it sends back, it takes the count the provider reported for it (80
    tokens), without encoding it again (the local tokenizer counts that text differently)."""
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=80 @delay=0.001", "model": model_for(credential)}
    )
    frames = await frames_until(socket, of_type("generation_finished"))
    await generation.generations_wait()
    answer = await Message.objects.aget(pk=frames[-1]["message_id"])
    assert answer.content.split()[-1] == "tok80" and not answer.tokens_estimated
    assert answer.output_tokens == 80 != tokens._tokens(answer.content)

    estimate = tokens.messages_tokens_estimate(
        [PromptMessage(role="assistant", content=answer.content)]
    )
    assert estimate == (
        tokens.TOKENS_PER_REPLY
        + tokens.TOKENS_PER_MESSAGE
        + tokens.tokens_estimate(text="assistant")
        + 80
    )
    await socket.disconnect()
