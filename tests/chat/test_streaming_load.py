"""The streaming path under load: one database hop before the upstream call, one progress
save for all answers, and frames a socket missed recovered through `offset` + `sync`."""

import asyncio
import datetime as dt

import pytest
from channels.layers import get_channel_layer
from django.utils import timezone

from aurax import db_threads
from chat import events, generation, services
from chat.layers import FastInMemoryChannelLayer
from chat.models import Message
from tests.chat.helpers import frames_until, of_type, socket_for, streamed_text
from tests.factories import UserFactory
from tests.gateway.conftest import model_for

STALE = dt.timedelta(minutes=5)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


async def _send(socket, credential, content):
    await socket.send_json_to({"type": "send", "content": content, "model": model_for(credential)})
    started = (await frames_until(socket, of_type("generation_started")))[-1]
    return started["conversation_id"], started["message_id"]


async def test_sending_takes_one_database_hop_before_the_upstream_call(
    alice, credential, monkeypatch
):
    hops = []
    real = db_threads._run
    monkeypatch.setattr(
        db_threads, "_run", lambda f, a, k: (hops.append(f.__name__), real(f, a, k))[1]
    )
    socket, _, _ = await socket_for(alice)
    await _send(socket, credential, "@tokens=50 @delay=0.01")
    first_delta = await frames_until(socket, of_type("delta"))
    # Only the hops until the first token: once the answer ends, the title is generated
    # through the pipeline too, with its own admission.
    before_first_token = [h for h in hops if h not in ("_drain", "reap")]  # background work
    # The action, the context and the admission: one hop, and none by the generation task.
    assert first_delta and before_first_token[0] == "_started"
    assert not {"_started", "generation_prepare", "_admit"} & set(before_first_token[1:])
    await frames_until(socket, of_type("generation_finished"))
    await socket.disconnect()
    await generation.generations_wait()


async def test_one_save_writes_the_growing_text_of_every_streaming_answer(
    alice, credential, monkeypatch
):
    monkeypatch.setattr(generation, "SAVE_INTERVAL", 0.05)
    saves = []
    real = services.messages_progress_save

    def spy(*, contents):
        saves.append(dict(contents))
        return real(contents=contents)

    monkeypatch.setattr(services, "messages_progress_save", spy)
    sockets = [(await socket_for(alice))[0] for _ in range(3)]
    answers = [(await _send(socket, credential, "@tokens=60 @delay=0.01"))[1] for socket in sockets]
    for socket in sockets:
        await frames_until(socket, of_type("generation_finished"))
        await socket.disconnect()
    await generation.generations_wait()

    together = [s for s in saves if set(answers) <= set(s)]
    assert together, "one save carried all three answers"
    for answer_id in answers:
        saved = [s[answer_id] for s in saves if answer_id in s]
        assert any(saved), "the partial text was saved while streaming"
        final = await Message.objects.aget(pk=answer_id)
        assert final.status == "complete" and all(final.content.startswith(t) for t in saved)


async def test_a_save_of_many_answers_is_a_run_of_short_writes_with_sends_between(monkeypatch):
    """A send that arrives while the database thread writes answers' progress waits for one
    batch, not for every streaming answer's text."""
    monkeypatch.setattr(generation, "SAVE_BATCH", 2)
    order = []

    def save(*, contents):
        order.append(sorted(contents))
        if len(order) == 1:  # a send arrives while the first batch is written
            db_threads.db_start(order.append, "send")
        return len(contents)

    monkeypatch.setattr(services, "messages_progress_save", save)
    flusher = generation._ProgressFlusher()
    answers = [generation._Answer(message_id) for message_id in (11, 12, 13)]
    for answer in answers:
        answer.append("Hoo")
        flusher._answers[answer.message_id] = answer  # tracked, without its timer task

    await flusher.flush()

    assert order == [[11, 12], "send", [13]]
    assert [a.saved_length for a in answers] == [3, 3, 3]


def test_a_progress_save_leaves_finished_answers_alone(transactional_db):
    from workspaces.selectors import personal_workspace_get

    user = UserFactory()
    conversations = [
        services.conversation_create(user=user, workspace=personal_workspace_get(user=user))
        for _ in range(2)
    ]
    streaming, finished = (
        services.message_send(conversation=c, content="hi")[1] for c in conversations
    )
    services.message_finish(message_id=finished.pk, content="final", status="complete")
    Message.objects.filter(pk=streaming.pk).update(heartbeat_at=timezone.now() - STALE)
    written = services.messages_progress_save(
        contents={streaming.pk: "partial", finished.pk: "stale"}
    )
    assert written == 1
    streaming.refresh_from_db()
    finished.refresh_from_db()
    assert streaming.content == "partial" and finished.content == "final"
    assert timezone.now() - streaming.heartbeat_at < STALE  # the save is also its heartbeat


async def test_concurrent_streams_reach_every_socket_without_a_gap(alice, credential):
    sockets = [(await socket_for(alice))[0] for _ in range(20)]
    for socket in sockets:
        await _send(socket, credential, "@tokens=80 @delay=0.002")
    for socket in sockets:
        frames = await frames_until(socket, of_type("generation_finished"), timeout=30)
        assert frames[-1]["status"] == "complete"
        assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 81)]
        await socket.disconnect()
    await generation.generations_wait()
    layer = get_channel_layer()
    if isinstance(layer, FastInMemoryChannelLayer):
        assert layer.dropped == 0


async def _receive(layer, channel, timeout=5.0):
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_a_socket_that_fell_behind_sees_the_gap_and_recovers_with_sync(
    alice, credential, caplog, monkeypatch
):
    layer = get_channel_layer()
    if not isinstance(layer, FastInMemoryChannelLayer):
        pytest.skip("only the in-memory layer has a capacity (Redis pub/sub drops nothing)")
    monkeypatch.setattr(layer, "channel_capacity", layer.compile_capacities({"slow.*": 3}))
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id = await _send(socket, credential, "@tokens=120 @delay=0.005")
    slow = await layer.new_channel(prefix="slow.")
    await layer.group_add(events.conversation_group(conversation_id), slow)

    # The client's rule (static/chat/chat.js): a delta whose offset is past what it holds
    # means frames were lost; it asks for a snapshot and continues from there.
    text, gap_seen = "", False
    await asyncio.sleep(0.3)  # falling behind: its queue (3) overflows
    while True:
        event = await _receive(layer, slow)
        if event["type"] == "chat.delta":
            if event["offset"] > len(text):
                gap_seen = True
                await layer.group_send(
                    events.control_group(conversation_id),
                    events.sync_request(conversation_id=conversation_id, reply_channel=slow),
                )
            elif event["offset"] + len(event["text"]) > len(text):
                text = text[: event["offset"]] + event["text"]
        elif event["type"] == "chat.snapshot" and len(event["text"]) >= len(text):
            text = event["text"]
        elif event["type"] == "chat.generation_finished":
            break
    assert gap_seen and layer.dropped > 0
    assert "full (capacity 3)" in caplog.text
    answer = await Message.objects.aget(pk=answer_id)
    assert text == answer.content and text.split() == [f"tok{i}" for i in range(1, 121)]
    await layer.group_discard(events.conversation_group(conversation_id), slow)
    await socket.disconnect()
    await generation.generations_wait()


async def test_the_in_memory_layer_counts_and_logs_what_a_full_channel_drops(caplog):
    layer = FastInMemoryChannelLayer(capacity=2)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    for i in range(5):
        await layer.group_send("g", {"type": "chat.delta", "i": i})
    assert [(await layer.receive(channel))["i"] for _ in range(2)] == [0, 1]
    assert layer.dropped == 3
    assert "1 message(s) dropped so far" in caplog.text  # then quiet for DROP_LOG_INTERVAL
