"""The comparison socket against the fake upstream over real HTTP: several models answer one
question at once, each billed; stop, a closed socket, failures per answer, keeping one as a
chat conversation, and who may do what."""

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from chat import generation
from chat.models import Conversation, Message
from compare import comparisons
from tests.chat.helpers import frames_until, of_type, socket_for
from tests.factories import UserFactory
from tests.gateway.conftest import model_for, usage_events
from workspaces.models import Membership, Role

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]

PATH = "/ws/compare/"


@pytest.fixture(autouse=True)
async def _comparisons_ended():
    """A comparison left for a page to take up ends with its test, as does the title of a
    kept one."""
    yield
    await comparisons.comparisons_interrupt()
    await generation.generations_wait()


async def _workspace_slug(user) -> str:
    membership = await Membership.objects.select_related("workspace").aget(user=user)
    return membership.workspace.slug


async def _compare(socket, user, models, content, **extra) -> dict:
    await socket.send_json_to(
        {
            "type": "compare",
            "request_id": "r1",
            "workspace": await _workspace_slug(user),
            "models": models,
            "content": content,
            **extra,
        }
    )
    return (await frames_until(socket, lambda f: f["type"] in ("comparison_started", "error")))[-1]


def _texts(frames, count: int) -> list[str]:
    texts = [""] * count
    for f in frames:
        if f["type"] == "delta":
            texts[f["slot"]] += f["text"]
    return texts


def _finished(frames) -> dict[int, dict]:
    return {f["slot"]: f for f in frames if f["type"] == "answer_finished"}


async def test_two_models_answer_side_by_side_in_coalesced_frames_each_billed(
    alice, credential, fake_upstream, fake_small_priced
):
    socket, connected, _ = await socket_for(alice, path=PATH)
    assert connected
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(socket, alice, models, "@tokens=60 @delay=0.005")
    assert started["type"] == "comparison_started" and started["request_id"] == "r1"
    assert started["models"] == models
    frames = await frames_until(socket, of_type("comparison_finished"))

    expected = " ".join(f"tok{i}" for i in range(1, 61))
    assert [t.strip() for t in _texts(frames, 2)] == [expected, expected]
    for slot in (0, 1):
        deltas = [f for f in frames if f["type"] == "delta" and f["slot"] == slot]
        assert 2 <= len(deltas) < 60, "frames are coalesced, not one per token"
    finished = _finished(frames)
    assert [finished[s]["served_model"] for s in (0, 1)] == ["fake-small", "fake-large"]
    assert all(f["status"] == "complete" and f["output_tokens"] for f in finished.values())
    assert frames.index(finished[0]) < len(frames) - 1, "each answer ends before the whole"

    events = await usage_events(source="compare")
    assert sorted(e.model for e in events) == ["fake-large", "fake-small"]
    assert {e.reference for e in events} == {f"compare:{started['comparison_id']}"}
    assert all(e.status == "ok" and e.user_id == alice.pk for e in events)
    small = next(e for e in events if e.model == "fake-small")
    assert small.cost > 0 and Decimal(finished[0]["cost"]) == small.cost
    assert finished[0]["cost_text"].startswith("$")
    await socket.disconnect()
    await comparisons.comparisons_wait()


async def test_stop_all_closes_every_upstream_call_keeps_the_text_and_bills_it(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice, path=PATH)
    fake_upstream.requests.clear()
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(socket, alice, models, "@tokens=400 @delay=0.02")
    frames = await frames_until(socket, of_type("delta"))
    await socket.send_json_to({"type": "stop", "comparison_id": started["comparison_id"]})
    frames += await frames_until(socket, of_type("comparison_finished"), timeout=5)

    finished = _finished(frames)
    assert [finished[s]["status"] for s in (0, 1)] == ["stopped", "stopped"]
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: (
            len(fake_upstream.requests) == 2
            and all(r["disconnected"] for r in fake_upstream.requests)
        ),
        timeout=5,
    ), "both upstream connections were closed"
    events = await usage_events(source="compare")
    assert [e.status for e in events] == ["stopped", "stopped"]
    assert all(e.output_tokens < 400 for e in events)
    assert 0 < len(_texts(frames, 2)[0].split()) < 400
    await socket.disconnect()
    await comparisons.comparisons_wait()


async def test_stop_one_answer_lets_the_other_finish(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(socket, alice, models, "@tokens=100 @delay=0.01")
    await frames_until(socket, of_type("delta"))
    await socket.send_json_to(
        {"type": "stop", "comparison_id": started["comparison_id"], "slot": 0}
    )
    frames = await frames_until(socket, of_type("comparison_finished"), timeout=10)
    finished = _finished(frames)
    assert finished[0]["status"] == "stopped" and finished[1]["status"] == "complete"
    await socket.disconnect()
    await comparisons.comparisons_wait()


async def test_a_closed_socket_leaves_the_answers_running_then_ends_them_unless_taken_up(
    alice, credential, fake_upstream, settings
):
    settings.COMPARE_RESUME_SECONDS = 0.6
    socket, _, _ = await socket_for(alice, path=PATH)
    fake_upstream.requests.clear()
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    await _compare(socket, alice, models, "@tokens=400 @delay=0.02")
    await frames_until(socket, of_type("delta"))
    await socket.disconnect()
    await asyncio.sleep(0.3)
    assert len(fake_upstream.requests) == 2
    assert not any(r["disconnected"] for r in fake_upstream.requests)  # still answering

    await comparisons.comparisons_wait()  # nobody took it up: ended after the grace
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: all(r["disconnected"] for r in fake_upstream.requests), timeout=5
    )
    events = await usage_events(source="compare")
    assert [e.status for e in events] == ["client_gone", "client_gone"]
    assert all(0 < e.output_tokens < 400 for e in events)


async def _resumed(socket, comparison_id) -> dict:
    await socket.send_json_to({"type": "resume", "comparison_id": comparison_id})
    return (await frames_until(socket, lambda f: f["type"] in ("comparison_resumed", "error")))[-1]


async def test_a_new_socket_takes_a_comparison_up_where_it_stands_and_gets_the_rest(
    alice, credential, fake_upstream
):
    first, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(first, alice, models, "@tokens=40 @delay=0.03")
    before = await frames_until(first, of_type("delta"))
    await first.disconnect()  # a reload

    second, _, _ = await socket_for(alice, path=PATH)
    resumed = await _resumed(second, started["comparison_id"])
    assert resumed["type"] == "comparison_resumed", resumed
    assert resumed["comparison_id"] == started["comparison_id"]
    assert resumed["question"] == "@tokens=40 @delay=0.03" and resumed["models"] == models
    assert resumed["running"] is True and resumed["kept_url"] is None
    assert [a["slot"] for a in resumed["answers"]] == [0, 1]
    assert any(a["text"] for a in resumed["answers"])
    # What the first socket was sent is where the snapshot starts from.
    assert resumed["answers"][before[-1]["slot"]]["text"].startswith(before[-1]["text"])

    rest = await frames_until(second, of_type("comparison_finished"), timeout=10)
    whole = " ".join(f"tok{i}" for i in range(1, 41))
    for slot, text in enumerate(_texts(rest, 2)):
        assert resumed["answers"][slot]["text"] + text == whole
    assert {f["status"] for f in _finished(rest).values()} == {"complete"}
    events = await usage_events(source="compare")
    assert [e.status for e in events] == ["ok", "ok"]

    await second.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 1}
    )
    kept = (await frames_until(second, of_type("kept")))[-1]
    assert await Conversation.objects.filter(pk=kept["conversation_id"], user=alice).aexists()
    await second.disconnect()


async def test_answers_that_ended_while_no_socket_had_them_are_in_the_snapshot(
    alice, credential, fake_upstream, fake_small_priced
):
    first, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-small")]
    started = await _compare(first, alice, models, '@reply="Un deux trois"')
    await first.disconnect()
    await comparisons.comparisons_wait()  # both answered meanwhile

    second, _, _ = await socket_for(alice, path=PATH)
    resumed = await _resumed(second, started["comparison_id"])
    assert resumed["running"] is False
    for answer in resumed["answers"]:
        assert answer["text"] == "Un deux trois"
        finished = answer["finished"]
        assert finished["status"] == "complete" and finished["slot"] == answer["slot"]
        assert finished["cost"] is not None and finished["cost_text"].startswith("$")
        assert "error_phrase" not in finished
    await second.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0}
    )
    kept = (await frames_until(second, of_type("kept")))[-1]

    # Kept, then reloaded again: the snapshot says where the kept conversation is.
    await second.disconnect()
    third, _, _ = await socket_for(alice, path=PATH)
    again = await _resumed(third, started["comparison_id"])
    assert again["kept_url"] == kept["url"]
    await third.disconnect()


async def test_only_its_user_may_take_a_comparison_up_and_only_before_it_ended(
    alice, credential, fake_upstream, settings
):
    settings.COMPARE_RESUME_SECONDS = 0.2
    first, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(first, alice, models, "@tokens=400 @delay=0.02")
    await frames_until(first, of_type("delta"))
    await first.disconnect()

    bob = await sync_to_async(UserFactory)()
    stranger, _, _ = await socket_for(bob, path=PATH)
    refused = await _resumed(stranger, started["comparison_id"])
    assert (refused["type"], refused["code"], refused["request"]) == (
        "error",
        "not_found",
        "resume",
    )
    assert "text" not in json.dumps(refused)  # nothing of the comparison in it
    assert (await _resumed(stranger, "0" * 32))["code"] == "not_found"
    await stranger.disconnect()

    await comparisons.comparisons_wait()  # the grace passed
    late, _, _ = await socket_for(alice, path=PATH)
    assert (await _resumed(late, started["comparison_id"]))["code"] == "not_found"
    await late.disconnect()


async def test_a_socket_that_takes_it_up_takes_it_from_the_socket_that_had_it(
    alice, credential, fake_upstream
):
    first, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(first, alice, models, "@tokens=400 @delay=0.02")
    await frames_until(first, of_type("delta"))

    second, _, _ = await socket_for(alice, path=PATH)  # a duplicated tab
    assert (await _resumed(second, started["comparison_id"]))["type"] == "comparison_resumed"
    moved = await frames_until(first, of_type("comparison_moved"))
    assert moved[-1]["comparison_id"] == started["comparison_id"]
    await first.send_json_to({"type": "stop", "comparison_id": started["comparison_id"]})
    assert (await frames_until(first, of_type("error")))[-1]["code"] == "not_found"
    await first.disconnect()  # the one that had it closing does not end it

    await second.send_json_to({"type": "stop", "comparison_id": started["comparison_id"]})
    finished = _finished(await frames_until(second, of_type("comparison_finished")))
    assert {f["status"] for f in finished.values()} == {"stopped"}
    await second.disconnect()


async def test_a_model_that_fails_fails_in_its_column_only(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), "no-such-model"]
    await _compare(socket, alice, models, "@tokens=5")
    frames = await frames_until(socket, of_type("comparison_finished"))
    finished = _finished(frames)
    assert finished[0]["status"] == "complete"
    assert finished[1]["status"] == "error" and finished[1]["error_code"]
    assert "no-such-model" in finished[1]["error_message"]
    assert "error_phrase" not in finished[1]
    await socket.disconnect()
    await comparisons.comparisons_wait()


async def test_keeping_an_answer_makes_a_conversation_with_every_answer_a_flip_away(
    alice, credential, fake_upstream, fake_small_priced
):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [
        model_for(credential, "fake-small"),
        model_for(credential, "fake-large"),
        "no-such-model",
    ]
    started = await _compare(
        socket,
        alice,
        models,
        "@tokens=8 Which is best?",
        system_prompt="Be brief.",
        temperature=0.5,
        max_tokens=50,
    )
    frames = await frames_until(socket, of_type("comparison_finished"))
    texts = _texts(frames, 3)
    finished = _finished(frames)

    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 2, "request_id": "k"}
    )
    refused = (await frames_until(socket, of_type("error")))[-1]
    assert refused["code"] == "invalid" and refused["request"] == "keep"

    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 1, "request_id": "k"}
    )
    kept = (await frames_until(socket, of_type("kept")))[-1]
    assert kept["url"] == f"/c/{kept['conversation_id']}/"
    conversation = await Conversation.objects.select_related("current_leaf").aget(
        pk=kept["conversation_id"]
    )
    assert conversation.user_id == alice.pk and conversation.model == models[1]
    assert conversation.system_prompt == "Be brief." and conversation.temperature == 0.5
    assert conversation.max_tokens == 50
    assert conversation.title == "@tokens=8 Which is best?"  # until its title comes
    answers = [
        m
        async for m in Message.objects.filter(conversation=conversation, role="assistant").order_by(
            "pk"
        )
    ]
    assert [a.content for a in answers] == texts[:2], "the failed answer is left out"
    assert conversation.current_leaf == answers[1]
    assert [a.model for a in answers] == models[:2]
    assert [a.served_model for a in answers] == ["fake-small", "fake-large"]
    assert [a.cost for a in answers] == [Decimal(finished[s]["cost"]) for s in (0, 1)]
    assert answers[0].cost > 0
    assert all(a.status == "complete" and a.output_tokens for a in answers)
    question = await Message.objects.aget(pk=answers[0].parent_id)
    assert question.content == "@tokens=8 Which is best?" and question.parent_id is None

    # Titled as a chat's first exchange is, by the kept answer's model, the call counted
    # in the conversation's total.
    await generation.generations_wait()
    await conversation.arefresh_from_db()
    assert conversation.title_final and conversation.title != question.content
    [title_call] = await usage_events(reference=f"chat.title:{conversation.pk}")
    assert title_call.model == "fake-large"

    # Asked again, the same conversation: keeping is done once.
    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0}
    )
    again = (await frames_until(socket, of_type("kept")))[-1]
    assert again["conversation_id"] == kept["conversation_id"]
    assert await Conversation.objects.filter(user=alice).acount() == 1
    await socket.disconnect()
    await comparisons.comparisons_wait()


async def test_the_kept_conversation_page_shows_the_kept_answer_and_its_siblings(
    alice, credential, fake_upstream
):
    from django.test import Client

    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(socket, alice, models, "@tokens=3 hello")
    await frames_until(socket, of_type("comparison_finished"))
    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0}
    )
    kept = (await frames_until(socket, of_type("kept")))[-1]
    await socket.disconnect()
    await generation.generations_wait()

    def page() -> str:
        client = Client()
        client.force_login(alice)
        return client.get(kept["url"]).content.decode()

    html = await sync_to_async(page)()
    assert "tok1 tok2 tok3" in html
    assert '<span class="branch-pos">1/2</span>' in html


async def test_keep_waits_for_every_answer_to_end(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(socket, alice, models, "@tokens=200 @delay=0.01")
    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0}
    )
    refused = (await frames_until(socket, of_type("error")))[-1]
    assert refused["code"] == "busy"
    # And a second comparison waits for the first.
    again = await _compare(socket, alice, models, "another")
    assert again["type"] == "error" and again["code"] == "busy"
    await socket.send_json_to({"type": "stop", "comparison_id": started["comparison_id"]})
    await frames_until(socket, of_type("comparison_finished"))
    assert await Conversation.objects.acount() == 0
    await socket.disconnect()
    await comparisons.comparisons_wait()


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"models": ["a"]}, "invalid", "models"),
        ({"models": ["a", "b", "c", "d", "e"]}, "invalid", "models"),
        ({"models": ["a", ""]}, "invalid", "models"),
        ({"models": "a,b"}, "invalid", "models"),
        ({"content": "   "}, "invalid", None),
        ({"temperature": 3}, "invalid", "temperature"),
        ({"max_tokens": 0}, "invalid", "max_tokens"),
        ({"workspace": "nowhere"}, "not_found", None),
    ],
)
async def test_a_wrong_request_is_refused_saying_why_and_asks_no_model(
    alice, credential, fake_upstream, change, code, param
):
    socket, _, _ = await socket_for(alice, path=PATH)
    fake_upstream.requests.clear()
    frame = {
        "type": "compare",
        "request_id": "bad",
        "workspace": await _workspace_slug(alice),
        "models": [model_for(credential), model_for(credential, "fake-large")],
        "content": "hi",
        **change,
    }
    await socket.send_json_to(frame)
    refused = await socket.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == code
    assert refused["request"] == "compare" and refused["request_id"] == "bad"
    assert refused["message"]
    assert refused.get("param") == param
    assert fake_upstream.requests == []
    await socket.disconnect()


async def test_a_viewer_may_not_compare(transactional_db, credential, fake_upstream):
    owner, viewer = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    workspace = (await Membership.objects.select_related("workspace").aget(user=owner)).workspace
    await Membership.objects.acreate(user=viewer, workspace=workspace, role=Role.VIEWER)
    socket, _, _ = await socket_for(viewer, path=PATH)
    await socket.send_json_to(
        {
            "type": "compare",
            "workspace": workspace.slug,
            "models": [model_for(credential), model_for(credential, "fake-large")],
            "content": "hi",
        }
    )
    refused = await socket.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    await socket.disconnect()


async def test_another_socket_can_neither_stop_nor_keep_a_comparison(
    alice, credential, fake_upstream
):
    mallory = await sync_to_async(UserFactory)()
    owner, _, _ = await socket_for(alice, path=PATH)
    intruder, _, _ = await socket_for(mallory, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    started = await _compare(owner, alice, models, "@tokens=30 @delay=0.01")
    for frame in (
        {"type": "stop", "comparison_id": started["comparison_id"]},
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0},
    ):
        await intruder.send_json_to(frame)
        refused = await intruder.receive_json_from(timeout=5)
        assert refused["type"] == "error" and refused["code"] == "not_found"
    frames = await frames_until(owner, of_type("comparison_finished"))
    assert all(f["status"] == "complete" for f in _finished(frames).values())
    assert await intruder.receive_nothing(timeout=0.2), "nothing of it reached the intruder"
    await owner.disconnect()
    await intruder.disconnect()
    await comparisons.comparisons_wait()


async def test_an_anonymous_socket_is_closed_with_4401(transactional_db):
    socket, connected, _ = await socket_for(None, path=PATH)
    assert connected
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_a_foreign_origin_is_refused(alice):
    _socket, connected, _ = await socket_for(alice, origin="http://evil.example", path=PATH)
    assert not connected


async def test_an_unknown_frame_is_refused(alice):
    socket, _, _ = await socket_for(alice, path=PATH)
    await socket.send_json_to({"type": "subscribe", "conversation_id": 1})
    refused = await socket.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "invalid"
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await socket.disconnect()


async def test_deactivating_the_account_ends_its_comparison_and_closes_the_socket(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice, path=PATH)
    fake_upstream.requests.clear()
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-large")]
    await _compare(socket, alice, models, "@tokens=400 @delay=0.02")
    await frames_until(socket, of_type("delta"))

    alice.is_active = False
    await alice.asave(update_fields=["is_active"])

    while (output := await socket.receive_output(timeout=3))["type"] != "websocket.close":
        pass
    assert output["code"] == 4401
    await comparisons.comparisons_wait()
    assert await sync_to_async(fake_upstream.wait_for)(
        lambda: all(r["disconnected"] for r in fake_upstream.requests), timeout=5
    )
    events = await usage_events(source="compare")
    assert [e.status for e in events] == ["client_gone", "client_gone"]


async def test_a_socket_asking_again_for_its_own_comparison_is_not_told_it_moved(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-small")]
    started = await _compare(socket, alice, models, '@reply="Un deux"')
    await frames_until(socket, of_type("comparison_finished"))
    assert (await _resumed(socket, started["comparison_id"]))["type"] == "comparison_resumed"
    await socket.send_json_to({"type": "ping"})
    frames = await frames_until(socket, of_type("pong"))
    assert not [f for f in frames if f["type"] == "comparison_moved"]
    await socket.disconnect()


async def test_a_refused_comparison_leaves_the_last_one_to_keep(alice, credential, fake_upstream):
    socket, _, _ = await socket_for(alice, path=PATH)
    models = [model_for(credential, "fake-small"), model_for(credential, "fake-small")]
    started = await _compare(socket, alice, models, '@reply="Un deux"')
    await frames_until(socket, of_type("comparison_finished"))
    refused = await _compare(socket, alice, models, "again", temperature=9)
    assert refused["type"] == "error" and refused["param"] == "temperature"
    await socket.send_json_to(
        {"type": "keep", "comparison_id": started["comparison_id"], "slot": 0}
    )
    assert (await frames_until(socket, lambda f: f["type"] in ("kept", "error")))[-1][
        "type"
    ] == "kept"
    await socket.disconnect()
