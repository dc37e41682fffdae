"""How an answer starts: its generation is spawned when the frame arrives and waits for the
action's database hop itself (chat.consumers `_answer_start`, chat.generation
`generation_start_after`), and for the socket that asked to join the conversation."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async

from aurax import db_threads
from billing import tokens
from chat import generation
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


def _generations_waiting_for_a_hop() -> list[asyncio.Task]:
    return [t for t in generation._tasks if t.get_coro().__qualname__ == "_generate_after"]


async def test_the_generation_is_spawned_before_the_database_hop_returns(
    alice, credential, fake_upstream
):
    """Every database thread is held: the send's hop cannot run, yet its generation task
    already exists, waiting for it. Once the threads are free the answer streams whole."""
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
            {"type": "send", "content": "@tokens=20 @delay=0.002", "model": model_for(credential)}
        )
        for _ in range(100):
            if _generations_waiting_for_a_hop():
                break
            await asyncio.sleep(0.01)
        assert len(_generations_waiting_for_a_hop()) == 1
        assert not await Message.objects.aexists(), "the hop has not run"
    finally:
        release.set()
        for future in held:
            await asyncio.wrap_future(future)
    frames = await frames_until(socket, of_type("generation_finished"))
    assert [f["type"] for f in frames][:2] == ["conversation_created", "generation_started"]
    assert frames[-1]["status"] == "complete"
    assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 21)]
    await socket.disconnect()
    await generation.generations_wait()


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


async def test_a_finished_answer_is_counted_for_the_next_send_s_estimate(
    alice, credential, fake_upstream
):
    """The next send's admission estimates the history's tokens before the upstream call;
    the answer it sends back was counted when it finished, so that estimate finds it."""
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=80 @delay=0.001", "model": model_for(credential)}
    )
    frames = await frames_until(socket, of_type("generation_finished"))
    await generation.generations_wait()
    answer = await Message.objects.aget(pk=frames[-1]["message_id"])
    assert answer.content.split()[-1] == "tok80" and not answer.tokens_estimated

    tokens.tokens_estimate(text="assistant")  # the role, which the first prompt did not have
    misses = tokens._tokens_remembered.cache_info().misses
    estimate = tokens.messages_tokens_estimate(
        [PromptMessage(role="assistant", content=answer.content)]
    )
    assert tokens._tokens_remembered.cache_info().misses == misses, "counted at the finish"
    assert estimate > 80
    await socket.disconnect()
