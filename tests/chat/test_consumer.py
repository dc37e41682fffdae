import asyncio
import json
import os
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chat import generation
from chat.models import Conversation, Message
from tests.chat.helpers import conversation_with, frames_until, of_type, socket_for, streamed_text
from tests.gateway.conftest import model_for, usage_events

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


async def _message(pk):
    return await Message.objects.aget(pk=pk)


async def _start(socket, credential, content, **extra):
    await socket.send_json_to(
        {"type": "send", "content": content, "model": model_for(credential), **extra}
    )
    frames = await frames_until(socket, of_type("generation_started"))
    started = frames[-1]
    return started["conversation_id"], started["message_id"], frames


async def test_it_streams_an_answer_in_coalesced_frames_and_saves_it(
    alice, credential, fake_upstream
):
    socket, connected, _ = await socket_for(alice)
    assert connected
    conversation_id, answer_id, frames = await _start(socket, credential, "@tokens=60 @delay=0.005")
    assert frames[0]["type"] == "conversation_created"
    frames = await frames_until(socket, of_type("generation_finished"))
    assert frames[-1]["status"] == "complete"
    text = streamed_text(frames)
    assert text.split() == [f"tok{i}" for i in range(1, 61)]
    deltas = [f for f in frames if f["type"] == "delta"]
    assert 2 <= len(deltas) < 60, "frames are coalesced, not one per token"
    answer = await _message(answer_id)
    assert answer.content == text and answer.status == "complete"
    assert answer.input_tokens and answer.output_tokens and not answer.tokens_estimated
    assert answer.served_model == "fake-small" and answer.ttft_ms is not None
    assert [e.reference for e in await usage_events(source="chat")][
        0
    ] == f"chat.message:{answer_id}"
    await socket.disconnect()
    await generation.generations_wait()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis layer (services mode)")
async def test_the_upstream_call_does_not_wait_for_the_start_to_be_published(
    alice, credential, fake_upstream, monkeypatch
):
    """The Redis layer's publishes are held back (as behind a pipeline of every other answer's
    frames): the answer's upstream call still goes out, and once they are released the socket
    gets generation_started, then the deltas, then generation_finished."""
    from chat import redis_layer

    released = asyncio.Event()
    real_send = redis_layer._Publisher._send

    async def held(self, batch):
        await released.wait()
        return await real_send(self, batch)

    monkeypatch.setattr(redis_layer._Publisher, "_send", held)
    socket, _, _ = await socket_for(alice)
    fake_upstream.requests.clear()
    try:
        await socket.send_json_to(
            {"type": "send", "content": "@tokens=20", "model": model_for(credential)}
        )
        called = await sync_to_async(fake_upstream.wait_for)(
            lambda: fake_upstream.requests, timeout=3
        )
    finally:
        released.set()
    assert called, "the upstream was called while generation_started was held"
    frames = await frames_until(socket, of_type("generation_finished"))
    kinds = [f["type"] for f in frames if f["type"] != "conversation_created"]
    assert kinds[0] == "generation_started" and kinds[-1] == "generation_finished"
    assert set(kinds[1:-1]) == {"delta"}
    assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 21)]
    await socket.disconnect()
    await generation.generations_wait()


async def _stopped_after_the_first_delta(socket, credential, fake_upstream) -> int:
    """Start a long answer, stop it after its first delta; the answer's id, once the socket
    was told it stopped and the upstream saw its connection closed."""
    conversation_id, answer_id, _ = await _start(socket, credential, "@tokens=400 @delay=0.02")
    await frames_until(socket, of_type("delta"))
    await socket.send_json_to({"type": "stop", "conversation_id": conversation_id})
    frames = await frames_until(socket, of_type("generation_finished"), timeout=5)
    assert frames[-1]["status"] == "stopped"
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: fake_upstream.requests[-1]["disconnected"], timeout=5
    )
    return answer_id


async def test_stop_cancels_the_upstream_keeps_the_partial_answer_and_bills_it(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    answer_id = await _stopped_after_the_first_delta(socket, credential, fake_upstream)
    answer = await _message(answer_id)
    assert answer.status == "stopped"
    assert 0 < len(answer.content.split()) < 400
    [event] = await usage_events(reference=f"chat.message:{answer_id}")
    assert event.status == "stopped" and event.output_tokens < 400
    await socket.disconnect()
    await generation.generations_wait()


async def test_the_upstream_is_read_once_per_frame_not_once_per_token(
    alice, credential, fake_upstream, monkeypatch
):
    from gateway import pipeline
    from providers.types import TextDelta

    reads = []
    real_next = pipeline.PipelineStream.__anext__

    async def counted(self):
        event = await real_next(self)
        if isinstance(event, TextDelta):
            reads.append(event.text)
        return event

    monkeypatch.setattr(pipeline.PipelineStream, "__anext__", counted)
    socket, _, _ = await socket_for(alice)
    await _start(socket, credential, "@tokens=60 @delay=0.005")
    frames = await frames_until(socket, of_type("generation_finished"))

    assert streamed_text(frames).split() == [f"tok{i}" for i in range(1, 61)]
    deltas = len([f for f in frames if f["type"] == "delta"])
    # 60 tokens 5 ms apart, frames 30 ms apart: read per token, that is ~60 reads.
    assert len(reads) <= deltas + 2 < 30
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_stop_does_not_wait_for_the_next_frame_s_time(
    alice, credential, fake_upstream, monkeypatch
):
    monkeypatch.setattr(generation, "FRAME_INTERVAL", 30.0)  # the next read: 30 s away
    socket, _, _ = await socket_for(alice)
    await _stopped_after_the_first_delta(socket, credential, fake_upstream)  # within 5 s
    await socket.disconnect()
    await generation.generations_wait()


@pytest.mark.parametrize(
    ("directives", "frame_interval"),
    [
        # Parked between two reads: the next frame's time is 30 s away.
        pytest.param("@tokens=400 @delay=0.02", 30.0, id="waiting-for-the-next-frame-s-time"),
        # Parked in the upstream read: the next token is 5 s away.
        pytest.param("@tokens=3 @delay=5", 0.03, id="reading-the-upstream"),
    ],
)
async def test_an_interrupt_at_shutdown_closes_the_call_saves_the_answer_and_bills_it(
    alice, credential, fake_upstream, monkeypatch, directives, frame_interval
):
    monkeypatch.setattr(generation, "FRAME_INTERVAL", frame_interval)
    socket, _, _ = await socket_for(alice)
    _conversation_id, answer_id, _ = await _start(socket, credential, directives)
    shown = streamed_text(await frames_until(socket, of_type("delta")))
    await asyncio.sleep(0.2)

    assert await generation.generations_interrupt(timeout=5) == 1

    frames = await frames_until(socket, of_type("generation_finished"), timeout=5)
    assert frames[-1]["status"] == "interrupted"
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: fake_upstream.requests[-1]["disconnected"], timeout=5
    )
    answer = await _message(answer_id)
    assert answer.status == "interrupted" and answer.error_code == "interrupted"
    assert answer.content.startswith(shown) and answer.content.split()[-1] != "tok400"
    [event] = await usage_events(reference=f"chat.message:{answer_id}")
    assert event.status == "client_gone"
    assert event.output_tokens == answer.output_tokens > 0
    await socket.disconnect()
    await generation.generations_wait()


def _layer_refusing_new_channels(monkeypatch):
    from channels.layers import get_channel_layer

    async def refused(prefix="specific"):
        raise ConnectionError("Error 111 connecting to the channel layer. Connection refused.")

    monkeypatch.setattr(get_channel_layer(), "new_channel", refused)  # the layer in use


def _preparation_failing(monkeypatch):
    monkeypatch.setattr(generation, "generation_prepare", lambda **kwargs: None)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(_layer_refusing_new_channels, id="channel-layer-down"),
        pytest.param(_preparation_failing, id="preparation-failing"),
    ],
)
async def test_an_answer_that_cannot_start_ends_as_an_error_to_retry_not_streaming(
    alice, credential, fake_upstream, monkeypatch, failure
):
    socket, _, _ = await socket_for(alice)  # its own channel exists before the failure
    failure(monkeypatch)

    await socket.send_json_to(
        {"type": "send", "content": "@tokens=5", "model": model_for(credential)}
    )
    frames = await frames_until(socket, of_type("generation_finished"), timeout=5)

    finished = frames[-1]
    assert finished["status"] == "error"
    assert finished["error_message"] == generation.NOT_STARTED_MESSAGE
    answer = await _message(finished["message_id"])
    assert answer.status == "error" and answer.content == ""
    assert fake_upstream.requests == []  # nothing was sent upstream
    assert await usage_events() == []  # nor billed
    # The conversation is not left busy: once the failure is over, the next send streams.
    monkeypatch.undo()
    await socket.send_json_to(
        {
            "type": "send",
            "conversation_id": finished["conversation_id"],
            "content": "@tokens=5",
        }
    )
    frames = await frames_until(socket, of_type("generation_finished"), timeout=10)
    assert frames[-1]["status"] == "complete"
    await socket.disconnect()
    await generation.generations_wait()


def _layer_failing_after_delivery(monkeypatch):
    """As the Redis layer once Redis is gone: this process's members get each group message,
    then its publish for the other processes fails."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    delivered = layer.group_send

    async def failing(group, message):
        await delivered(group, message)
        raise ConnectionError("Error 111 connecting to the channel layer. Connection refused.")

    monkeypatch.setattr(layer, "group_send", failing)


async def test_an_answer_ends_whole_and_gets_its_title_when_the_layer_fails_as_it_streams(
    alice, credential, fake_upstream, monkeypatch, caplog
):
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id, frames = await _start(
        socket, credential, "@tokens=30 @delay=0.01 tell me about owls"
    )
    frames += await frames_until(socket, of_type("delta"))
    _layer_failing_after_delivery(monkeypatch)

    frames += await frames_until(socket, of_type("generation_finished"), timeout=10)

    # The tab saw the whole answer end, from the frames delivered before each publish failed.
    assert frames[-1]["status"] == "complete"
    words = [f"tok{i}" for i in range(1, 31)]
    assert streamed_text(frames).split() == words
    await generation.generations_wait()  # the title is asked for after the answer's end
    assert "publishing the end of answer" in caplog.text  # logged, and the end went on
    answer = await _message(answer_id)
    assert answer.status == "complete" and answer.content.split() == words
    [event] = await usage_events(reference=f"chat.message:{answer_id}")
    assert event.status == "ok" and event.output_tokens == answer.output_tokens == 30
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.title_final  # generated and saved; only its announcement failed
    await socket.disconnect()
    await generation.generations_wait()


def _database_restarting_at_the_end(monkeypatch) -> list[int]:
    """Saving an answer's end fails twice as the database restarts, then works (quick retries
    here); returns the ids of the answers each try saved."""
    from django.db import OperationalError

    from chat import services

    monkeypatch.setattr(generation, "FINISH_RETRY_DELAYS", (0.05, 0.05, 0.05))
    saving = services.message_finish
    tries = []

    def restarting(**kwargs):  # the database answers at the third try
        tries.append(kwargs["message_id"])
        if len(tries) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return saving(**kwargs)

    monkeypatch.setattr(services, "message_finish", restarting)
    return tries


async def test_an_answer_ends_saved_whole_when_the_database_is_away_at_its_end(
    alice, credential, fake_upstream, monkeypatch
):
    tries = _database_restarting_at_the_end(monkeypatch)
    socket, _, _ = await socket_for(alice)
    _, answer_id, frames = await _start(socket, credential, "@tokens=30 @delay=0.005")
    frames += await frames_until(socket, of_type("generation_finished"), timeout=10)

    assert frames[-1]["status"] == "complete"
    assert tries == [answer_id] * 3
    answer = await _message(answer_id)
    words = [f"tok{i}" for i in range(1, 31)]
    assert answer.status == "complete" and answer.content.split() == words
    await socket.disconnect()
    await generation.generations_wait()


async def test_an_answer_that_cannot_start_ends_as_an_error_when_the_database_comes_back(
    alice, credential, fake_upstream, monkeypatch
):
    """The database stopping is often why an answer could not start; saving its error end is
    tried again as a finished answer's end is, not left "streaming" (the conversation busy)
    until its heartbeat goes stale."""
    _preparation_failing(monkeypatch)
    tries = _database_restarting_at_the_end(monkeypatch)
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {"type": "send", "content": "@tokens=5", "model": model_for(credential)}
    )
    finished = (await frames_until(socket, of_type("generation_finished"), timeout=10))[-1]

    assert finished["status"] == "error"
    assert finished["error_message"] == generation.NOT_STARTED_MESSAGE
    assert tries == [finished["message_id"]] * 3
    answer = await _message(finished["message_id"])
    assert answer.status == "error" and answer.content == ""
    assert fake_upstream.requests == []
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_send_while_the_database_is_away_is_refused_and_the_socket_stays(
    alice, credential, monkeypatch
):
    from django.db import OperationalError

    from chat import actions

    def away(**kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")

    socket, _, _ = await socket_for(alice)
    monkeypatch.setattr(actions, "send", away)
    await socket.send_json_to(
        {"type": "send", "content": "hello", "model": model_for(credential), "request_id": 7}
    )
    refused = (await frames_until(socket, of_type("error")))[-1]
    assert refused["code"] == "unavailable" and refused["request_id"] == 7
    assert refused["message"].startswith("The service is briefly unavailable")
    assert "5432" not in refused["message"]
    await socket.send_json_to({"type": "ping"})
    assert (await frames_until(socket, of_type("pong")))[-1] == {"type": "pong"}
    await socket.disconnect()


async def test_regenerate_adds_a_sibling_answer_and_keeps_the_first(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    conversation_id, first_id, _ = await _start(socket, credential, '@reply="first answer"')
    await frames_until(socket, of_type("generation_finished"))
    await socket.send_json_to({"type": "regenerate", "message_id": first_id})
    started = (await frames_until(socket, of_type("generation_started")))[-1]
    await frames_until(socket, of_type("generation_finished"))
    first, second = await _message(first_id), await _message(started["message_id"])
    assert first.parent_id == second.parent_id and first.pk != second.pk
    assert first.content.strip() == second.content.strip() == "first answer"
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.current_leaf_id == second.pk
    answers = [
        r for r in fake_upstream.requests if "title" not in r["json"]["messages"][0]["content"]
    ]
    assert len(answers) == 2
    await socket.disconnect()
    await generation.generations_wait()


async def test_editing_a_sent_message_branches_and_keeps_both(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id, _ = await _start(socket, credential, '@reply="one"')
    await frames_until(socket, of_type("generation_finished"))
    question_id = (await _message(answer_id)).parent_id
    await socket.send_json_to(
        {"type": "edit", "message_id": question_id, "content": '@reply="two"'}
    )
    started = (await frames_until(socket, of_type("generation_started")))[-1]
    await frames_until(socket, of_type("generation_finished"))
    new_answer = await _message(started["message_id"])
    new_question = await _message(new_answer.parent_id)
    old_question = await _message(question_id)
    assert new_question.pk != old_question.pk and new_question.parent_id == old_question.parent_id
    assert (
        old_question.content == '@reply="one"'
        and (await _message(answer_id)).content.strip() == "one"
    )
    assert new_answer.content.strip() == "two"
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_second_tab_sees_the_stream_live_and_can_stop_it(alice, credential, fake_upstream):
    first, _, _ = await socket_for(alice)
    second, _, _ = await socket_for(alice)
    conversation_id, answer_id, _ = await _start(first, credential, "@tokens=300 @delay=0.01")
    await second.send_json_to({"type": "subscribe", "conversation_id": conversation_id})
    frames = await frames_until(second, of_type("snapshot"))
    assert any(f["type"] == "subscribed" and f["streaming_message_id"] == answer_id for f in frames)
    snapshot = frames[-1]["text"]
    frames = await frames_until(
        second, lambda f: f["type"] == "delta" and f["offset"] + len(f["text"]) > len(snapshot)
    )
    await second.send_json_to({"type": "stop", "conversation_id": conversation_id})
    for socket in (first, second):
        finished = (await frames_until(socket, of_type("generation_finished")))[-1]
        assert finished["status"] == "stopped"
    await first.disconnect()
    await second.disconnect()
    await generation.generations_wait()


async def test_closing_every_tab_does_not_lose_the_answer(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice)
    _, answer_id, _ = await _start(socket, credential, "@tokens=40 @delay=0.01")
    await socket.disconnect()
    await generation.generations_wait()
    answer = await _message(answer_id)
    assert answer.status == "complete" and len(answer.content.split()) == 40


async def test_an_upstream_error_is_shown_on_the_message_with_the_taxonomy_message(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    _, answer_id, _ = await _start(socket, credential, "@status=429 @retry_after=30")
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["status"] == "error" and finished["error_code"] == "rate_limited"
    assert "30" in finished["error_message"]
    answer = await _message(answer_id)
    assert answer.status == "error" and answer.error_code == "rate_limited"
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_model_whose_provider_keeps_failing_says_so_and_when_to_retry(
    alice, credential, fake_upstream, settings
):
    from providers.circuit import circuit_failure

    settings.PROVIDER_CIRCUIT_FAILURES = 1
    settings.PROVIDER_CIRCUIT_COOLDOWN = 30
    await sync_to_async(circuit_failure)(credential.id)
    socket, _, _ = await socket_for(alice)
    _, answer_id, _ = await _start(socket, credential, "hi")
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["status"] == "error" and finished["error_code"] == "overloaded"
    assert finished["error_message"] == (
        "The model “fake-small (Fake)” is temporarily unavailable: its provider is failing. "
        "Try again in 30 s."
    )
    answer = await _message(answer_id)
    assert answer.error_code == "overloaded" and answer.retry_after == 30
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_send_with_a_temperature_its_model_cannot_take_is_refused_and_nothing_saved(
    alice, anthropic_credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {
            "type": "send",
            "content": "Write a poem",
            "model": model_for(anthropic_credential),
            "temperature": 1.5,
            "request_id": 3,
        }
    )
    refused = (await frames_until(socket, of_type("error")))[-1]
    assert refused == {
        "type": "error",
        "code": "temperature_unsupported",
        "param": "temperature",
        "message": "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5.",
        "request": "send",
        "request_id": 3,
    }
    assert not await Conversation.objects.filter(user=alice).aexists()  # nor a message

    # Out of what any conversation may have, or not a number: refused, not clamped.
    alice.language = "pt-br"
    await alice.asave(update_fields=["language"])
    await socket.disconnect()
    socket, _, _ = await socket_for(alice)
    conversation = await sync_to_async(conversation_with)(alice, temperature=0.4)
    for temperature in (5, "warm", True):
        await socket.send_json_to(
            {
                "type": "send",
                "conversation_id": conversation.pk,
                "content": "Write a poem",
                "temperature": temperature,
            }
        )
        refused = (await frames_until(socket, of_type("error")))[-1]
        assert (refused["code"], refused["param"], refused["message"]) == (
            "invalid",
            "temperature",
            "A temperatura deve ser um número de 0 a 2.",
        )
    await conversation.arefresh_from_db()
    assert conversation.temperature == 0.4
    assert not await Message.objects.filter(conversation=conversation).aexists()
    await socket.disconnect()
    assert fake_upstream.requests == []


async def test_a_saved_temperature_the_model_chosen_since_cannot_take_fails_the_answer(
    alice, credential, anthropic_credential, fake_upstream
):
    """The model changed to one that cannot take the temperature saved with the conversation:
    the model is saved, the temperature kept (the page says so), and the answer is refused
    inline before any call, the question kept to retry once one of them is changed."""
    conversation = await sync_to_async(conversation_with)(
        alice, model=model_for(credential), temperature=1.5
    )
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to(
        {
            "type": "send",
            "conversation_id": conversation.pk,
            "content": "Write a poem",
            "model": model_for(anthropic_credential),
            "temperature": 1.5,  # the page sends every setting with the message
        }
    )
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["status"] == "error" and finished["error_code"] == "temperature_unsupported"
    assert finished["error_message"] == (
        "The model “fake-small (Claude)” accepts a temperature from 0 to 1, not 1.5."
    )
    answer = await _message(finished["message_id"])
    assert answer.status == "error" and answer.content == ""
    question = await Message.objects.aget(pk=answer.parent_id)
    assert question.content == "Write a poem"  # the user's message is kept, to retry
    await conversation.arefresh_from_db()
    assert (conversation.model, conversation.temperature) == (
        model_for(anthropic_credential),
        1.5,  # neither clamped nor dropped behind the user's back
    )
    await socket.disconnect()
    await generation.generations_wait()
    assert [r for r in fake_upstream.requests if r["path"] == "/v1/messages"] == []
    assert [e for e in await usage_events() if e.source == "chat"] == []


async def test_the_offline_demo_model_leaves_the_question_as_the_title(alice, settings):
    """The demo model (a fresh install's only model) answers every request with its canned
    text: asked for a title, that would title every conversation alike."""
    from tests.providers.factories import credential

    settings.PROVIDER_DEMO_TOKEN_DELAY = 0
    demo = await sync_to_async(credential)(kind="demo", api_key="", models=["aurax-demo"])
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id, _ = await _start(
        socket, demo, "Plan three days in Lisbon by train", model=f"{demo.id}:aurax-demo"
    )
    await frames_until(socket, of_type("generation_finished"))
    await generation.generations_wait()

    answer = await _message(answer_id)
    assert answer.status == "complete" and "offline demo" in answer.content
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.title == "Plan three days in Lisbon by train"  # the provisional one
    assert not conversation.title_final
    # The title was asked for (and billed, as any call), then not used.
    titles = await usage_events(reference=f"chat.title:{conversation_id}")
    assert [event.provider_kind for event in titles] == ["demo"]
    # What it used reaches the page all the same, for the running total.
    changed = await _title_usage_frames(socket)
    assert {f["title"] for f in changed} == {"Plan three days in Lisbon by train"}
    assert {json.dumps(f["title_usage"]) for f in changed} == {_usage_of(titles[0])}
    await socket.disconnect()


async def _title_usage_frames(socket) -> list[dict]:
    """The `conversation_changed` frames carrying a title call's usage: one per group the
    socket is in (the user's, for the sidebar, and the conversation's)."""
    frames = [
        f
        for f in await frames_until(socket, lambda f: "title_usage" in f)
        if f["type"] == "conversation_changed"
    ]
    frames.append(await socket.receive_json_from(timeout=5))
    assert [f["type"] for f in frames].count("conversation_changed") == 2
    return [f for f in frames if "title_usage" in f]


def _usage_of(call) -> str:
    return json.dumps(
        {
            "call_id": call.uid.hex,
            "input_tokens": call.input_tokens,
            "output_tokens": call.output_tokens,
            "cost": None if call.cost is None else format(call.cost, "f"),
            "estimated": call.estimated,
        }
    )


async def test_a_title_typed_before_the_automatic_one_keeps_and_its_call_is_counted(
    alice, credential, fake_upstream
):
    """Renamed while the first answer streams: the automatic title that comes after is not
    used, but its call was billed, and its usage reaches the page with the user's title."""
    from chat import services

    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(
        socket, credential, '@reply="Owls" @tokens=20 @delay=0.02 tell me about owls'
    )
    conversation = await Conversation.objects.aget(pk=conversation_id)
    await sync_to_async(services.conversation_rename)(conversation=conversation, title="Mine")
    frames = await frames_until(socket, of_type("generation_finished"))
    renamed = [f for f in frames if f["type"] == "conversation_changed"]
    assert renamed == [
        {"type": "conversation_changed", "conversation_id": conversation_id, "title": "Mine"}
    ]

    changed = await _title_usage_frames(socket)

    await generation.generations_wait()
    [call] = await usage_events(reference=f"chat.title:{conversation_id}")
    assert call.input_tokens > 0
    assert {f["title"] for f in changed} == {"Mine"}
    assert {json.dumps(f["title_usage"]) for f in changed} == {_usage_of(call)}
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.title == "Mine"
    await socket.disconnect()


async def test_a_second_send_while_streaming_is_refused(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(socket, credential, "@tokens=100 @delay=0.01")
    await socket.send_json_to(
        {"type": "send", "conversation_id": conversation_id, "content": "again"}
    )
    frames = await frames_until(socket, of_type("error"))
    assert frames[-1]["code"] == "busy"
    await socket.send_json_to({"type": "stop", "conversation_id": conversation_id})
    await frames_until(socket, of_type("generation_finished"))
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_title_is_generated_after_the_first_exchange(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(socket, credential, '@reply="Hi" tell me about owls')
    await frames_until(socket, of_type("generation_finished"))
    await generation.generations_wait()
    frames = await frames_until(socket, of_type("conversation_changed"))
    conversation = await Conversation.objects.aget(pk=conversation_id)
    assert conversation.title_final and conversation.title == frames[-1]["title"]
    await socket.disconnect()


async def test_a_refusal_is_said_in_the_language_of_the_user_s_pages(alice):
    alice.language = "es"
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to({"type": "send", "content": "  ", "request_id": 1})
    frames = await frames_until(socket, of_type("error"))
    assert frames[-1]["message"] == "El mensaje está vacío."
    await socket.disconnect()

    # No language saved: the browser's, as for the pages.
    alice.language = ""
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(
        alice, extra_headers=[(b"accept-language", b"pt-BR,pt;q=0.9,en;q=0.5")]
    )
    await socket.send_json_to({"type": "stop", "conversation_id": 999999})
    frames = await frames_until(socket, of_type("error"))
    assert (frames[-1]["code"], frames[-1]["message"]) == ("not_found", "Não encontrado.")
    await socket.disconnect()


@sync_to_async
def _page_of(user, conversation_id) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get(f"/c/{conversation_id}/").content.decode()


async def test_a_refusal_with_values_is_said_in_the_reader_s_language_live_and_reloaded(
    alice, credential, fake_upstream
):
    """A budget refusal (what is left, what the request could use, who can raise it) and an
    unknown model are said in the reader's language: in the frame that ends the answer and in
    the page drawn later."""
    from billing.services import budget_upsert
    from workspaces.models import Membership

    alice.language = "es"
    await alice.asave(update_fields=["language"])
    membership = await Membership.objects.filter(user=alice).afirst()
    await sync_to_async(budget_upsert)(
        workspace_id=membership.workspace_id, cost_limit=None, token_limit=10
    )
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id, _ = await _start(socket, credential, "hola")
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["error_code"] == "budget_reached"
    said = finished["error_message"]
    assert said.startswith("Presupuesto del espacio de trabajo de 10 tokens para ")
    assert ": quedan 10 tokens, y esta solicitud podría usar hasta " in said
    assert said.endswith(
        "o un administrador del espacio de trabajo puede aumentarlo en la página Uso."
    )
    assert "error_phrase" not in finished
    answer = await _message(answer_id)
    assert answer.error_message.startswith("Workspace budget of 10 tokens for ")  # stored
    assert said in await _page_of(alice, conversation_id)

    # Nothing is kept in anyone's language: a Portuguese reader of the same answer reads it
    # in Portuguese.
    alice.language = "pt-br"
    await alice.asave(update_fields=["language"])
    page = await _page_of(alice, conversation_id)
    assert "Orçamento do espaço de trabalho de 10 tokens para " in page
    await socket.disconnect()
    await generation.generations_wait()

    alice.language = "es"
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(socket, credential, "hola", model="nope")
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["error_code"] == "model_unavailable"
    assert finished["error_message"] == "El modelo “nope” no está disponible para ti."
    assert "El modelo “nope” no está disponible para ti." in await _page_of(alice, conversation_id)
    await socket.disconnect()
    await generation.generations_wait()


async def test_the_title_comes_with_what_its_call_used_for_the_running_total(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(socket, credential, '@reply="Owls" tell me about owls')
    await frames_until(socket, of_type("generation_finished"))
    changed = await _title_usage_frames(socket)
    [call] = await usage_events(reference=f"chat.title:{conversation_id}")
    assert {f["title"] for f in changed} == {"Owls"}
    assert {json.dumps(f["title_usage"]) for f in changed} == {_usage_of(call)}
    assert call.input_tokens > 0
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_provider_s_wait_is_said_in_the_reader_s_language_and_number_format(
    alice, credential, fake_upstream
):
    """A provider's error with the seconds to wait: in the frame that ends the answer and in
    the page drawn later, in each reader's language and number format."""
    alice.language = "es"
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(alice)
    conversation_id, answer_id, _ = await _start(
        socket, credential, "@status=429 @retry_after=1500"
    )
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]

    spanish = (
        "El proveedor está limitando la frecuencia de las solicitudes. Reintenta en 1\xa0500 s."
    )
    assert (finished["error_code"], finished["error_message"]) == ("rate_limited", spanish)
    assert "error_phrase" not in finished
    answer = await _message(answer_id)
    assert answer.error_message == (
        "The provider is rate limiting requests. Retry in 1,500 s."  # stored in English
    )
    assert answer.retry_after == 1500
    assert spanish in await _page_of(alice, conversation_id)
    await socket.disconnect()
    await generation.generations_wait()

    alice.language = "pt-br"
    await alice.asave(update_fields=["language"])
    portuguese = "O provedor está limitando a taxa de solicitações. Tente novamente em 1.500 s."
    assert portuguese in await _page_of(alice, conversation_id)
    socket, _, _ = await socket_for(alice)
    await socket.send_json_to({"type": "regenerate", "message_id": answer_id})
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]
    assert finished["error_message"] == portuguese
    await socket.disconnect()
    await generation.generations_wait()


async def test_an_anthropic_chat_prompt_is_marked_for_the_prompt_cache_and_the_read_billed(
    alice, anthropic_credential, fake_upstream, settings
):
    """Each answer's prompt ends with a cache breakpoint, so that the next answer (whose prompt
    begins with it) reads it back; what the provider says it read is priced as such."""
    from billing.models import ModelPriceOverride

    await ModelPriceOverride.objects.acreate(
        provider_kind="anthropic",
        model="fake-small",
        input_per_mtok=10,
        output_per_mtok=10,
        cache_read_per_mtok=1,
    )
    socket, _, _ = await socket_for(alice)
    conversation_id, _, _ = await _start(socket, anthropic_credential, '@reply="Noted"')
    await frames_until(socket, of_type("generation_finished"))
    await socket.send_json_to(
        {
            "type": "send",
            "conversation_id": conversation_id,
            "content": '@reply="Still here" @cached=600',
        }
    )
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]

    # The answers' calls (the title's has a system prompt of its own).
    first, second = [r["json"] for r in fake_upstream.posted() if "system" not in r["json"]]
    marked = {"type": "ephemeral"}
    assert first["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": '@reply="Noted"', "cache_control": marked}],
        }
    ]
    # Only the last message carries it: the earlier ones are the cached beginning.
    assert [m["content"] for m in second["messages"][:2]] == ['@reply="Noted"', "Noted"]
    assert second["messages"][2]["content"][0]["cache_control"] == marked
    answer = await _message(finished["message_id"])
    [row] = await usage_events(reference=f"chat.message:{answer.pk}")
    assert row.cache_read_tokens == answer.cache_read_tokens == 600
    assert answer.input_tokens == row.input_tokens > 600
    plain = row.input_tokens - 600
    assert answer.cost == row.cost == Decimal((plain + row.output_tokens) * 10 + 600) / 10**6

    settings.CHAT_PROMPT_CACHE = False
    await socket.send_json_to(
        {"type": "send", "conversation_id": conversation_id, "content": '@reply="Bye"'}
    )
    await frames_until(socket, of_type("generation_finished"))
    third = [r["json"] for r in fake_upstream.posted() if "system" not in r["json"]][-1]
    assert third["messages"][-1]["content"] == '@reply="Bye"'
    assert "cache_control" not in json.dumps(third)
    await socket.disconnect()
    await generation.generations_wait()
