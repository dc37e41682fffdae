"""Background responses (`background: true`): kept at once, queued, answered by a real Celery
worker through the pipeline, read back while they run; cancelled (the upstream call closed,
billed as stopped); taken up again when their worker died or the broker lost them; and what
is refused."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from api.models import StoredResponse
from api.services import response_events_write
from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.api.client import AsyncClient
from tests.api.test_responses import events_of, post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quick_checks(monkeypatch):
    monkeypatch.setattr("api.background.CHECK_SECONDS", 0.05)


@pytest.fixture
def task_lost(monkeypatch):
    """Background responses queued while this is on get no task, as if it were lost (the
    broker restarted empty): only the resume task, or a direct run, answers them."""
    monkeypatch.setattr("api.services.response_run_soon", lambda public_id: None)
    return monkeypatch


async def queue(headers, text, **fields):
    response = await post(
        {"model": "fake-small", "input": text, "background": True, **fields}, headers
    )
    assert response.status_code == 200, response.content
    shell = response.json()
    assert (shell["status"], shell["background"], shell["store"]) == ("queued", True, True)
    assert shell["output"] == [] and shell["usage"] is None
    return shell


async def read(headers, response_id):
    got = await AsyncClient().get(f"/v1/responses/{response_id}", headers=headers)
    assert got.status_code == 200, got.content
    return got.json()


async def until(headers, response_id, *statuses, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = await read(headers, response_id)
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{response_id} is still {body['status']}")


async def written(public_id) -> StoredResponse:
    """The stored response once its worker has written its end."""
    row = await StoredResponse.objects.aget(public_id=public_id)
    end = time.monotonic() + 10
    while row.request is not None and time.monotonic() < end:
        await asyncio.sleep(0.05)
        await row.arefresh_from_db()
    assert row.request is None, row.status
    return row


async def cancel(headers, response_id):
    return await AsyncClient().post(f"/v1/responses/{response_id}/cancel", headers=headers)


@sync_to_async
def usage_statuses():
    ledger_flush()
    return sorted(UsageEvent.objects.values_list("status", flat=True))


async def test_a_background_response_is_answered_by_a_worker_and_read_back(
    auth, api_key, celery_worker, fake_upstream
):
    shell = await queue(auth, '@reply="Lent"', instructions="Be slow.", metadata={"job": "7"})
    done = await until(auth, shell["id"], "completed")
    assert done["output"][0]["content"][0]["text"] == "Lent"
    assert (done["background"], done["metadata"], done["created_at"]) == (
        True,
        {"job": "7"},
        shell["created_at"],
    )
    assert done["usage"]["output_tokens"] > 0
    [sent] = [r for r in fake_upstream.posted() if r["path"].endswith("/chat/completions")]
    assert sent["json"]["messages"][0] == {"role": "system", "content": "Be slow."}
    assert await usage_statuses() == ["ok"]
    row = await StoredResponse.objects.aget(public_id=shell["id"])
    assert row.request is None and row.heartbeat_at is None

    # It is followed as any stored response.
    follow = await post(
        {"model": "fake-small", "input": '@reply="Puis"', "previous_response_id": shell["id"]},
        auth,
    )
    assert follow.status_code == 200, follow.content
    *_, last = [r for r in fake_upstream.posted() if r["path"].endswith("/chat/completions")]
    assert [m["content"] for m in last["json"]["messages"]] == [
        '@reply="Lent"',
        "Lent",
        '@reply="Puis"',
    ]


async def test_cancel_stops_the_upstream_call_and_keeps_what_it_had_said(
    auth, celery_worker, fake_upstream
):
    shell = await queue(auth, "@hang")
    await until(auth, shell["id"], "in_progress")
    assert await fake_upstream.until(lambda: len(fake_upstream.posted()) == 1, timeout=10)

    cancelled = await cancel(auth, shell["id"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    [call] = fake_upstream.posted()
    assert await fake_upstream.until(lambda: call["disconnected"], timeout=10)
    final = (await written(shell["id"])).body
    assert final["status"] == "cancelled"
    assert final["output"] == []  # the upstream had said nothing
    assert await usage_statuses() == ["stopped"]

    again = await cancel(auth, shell["id"])
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


async def test_a_response_cancelled_midway_keeps_the_text_said_so_far(
    auth, celery_worker, fake_upstream
):
    words = "un deux trois quatre cinq six sept huit"
    shell = await queue(auth, f'@reply="{words}" @delay=0.4')
    assert await fake_upstream.until(lambda: len(fake_upstream.posted()) == 1, timeout=10)
    assert fake_upstream.posted()[0]["json"]["stream"] is True
    await asyncio.sleep(1.0)  # a few of its words on their way
    assert (await cancel(auth, shell["id"])).status_code == 200
    final = (await written(shell["id"])).body
    assert final["status"] == "cancelled"
    [message] = final["output"]
    said = message["content"][0]["text"]
    assert message["status"] == "incomplete"
    assert said and words.startswith(said) and said != words
    assert await usage_statuses() == ["stopped"]


async def test_what_cannot_be_cancelled_is_refused(auth, celery_worker):
    finished = await queue(auth, '@reply="fait"')
    await until(auth, finished["id"], "completed")
    refused = await cancel(auth, finished["id"])
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "response_not_cancellable"

    plain = (await post({"model": "fake-small", "input": "@reply=x"}, auth)).json()
    refused = await cancel(auth, plain["id"])
    assert refused.status_code == 400 and "not a background response" in refused.content.decode()
    assert (await cancel(auth, "resp_nothing")).status_code == 404


async def test_a_response_cancelled_while_queued_never_runs(auth, fake_upstream, task_lost):
    from api.background import response_run

    shell = await queue(auth, '@reply="jamais"')
    assert (await cancel(auth, shell["id"])).json()["status"] == "cancelled"
    await sync_to_async(response_run)(public_id=shell["id"])
    assert (await read(auth, shell["id"]))["status"] == "cancelled"
    assert not fake_upstream.posted()


async def test_responses_left_by_a_dead_worker_or_a_lost_task_are_answered_again(
    auth, celery_worker, task_lost
):
    from api.tasks import background_resume

    lost = await queue(auth, '@reply="perdu"')
    orphan = await queue(auth, '@reply="orphelin"')
    # One task lost with the broker, the other's worker killed after it had started (its
    # heartbeat stopped long ago).
    long_ago = timezone.now() - timedelta(minutes=10)
    await StoredResponse.objects.filter(public_id=lost["id"]).aupdate(created_at=long_ago)
    await StoredResponse.objects.filter(public_id=orphan["id"]).aupdate(
        status="in_progress", heartbeat_at=long_ago, created_at=long_ago
    )
    # What the dead worker had written of its stream.
    row = await StoredResponse.objects.aget(public_id=orphan["id"])
    await sync_to_async(response_events_write)(
        response_id=row.pk,
        events=[
            {"type": "response.in_progress", "response": {}, "sequence_number": 2},
            {"type": "response.output_text.delta", "delta": "orph", "sequence_number": 3},
        ],
    )
    task_lost.undo()
    assert await sync_to_async(background_resume)() == 2
    assert (await until(auth, lost["id"], "completed"))["output"][0]["content"][0]["text"] == (
        "perdu"
    )
    answered = await until(auth, orphan["id"], "completed")
    assert answered["output"][0]["content"][0]["text"] == "orphelin"
    # Its stream now has the new answer's events only, numbered after the dead worker's.
    events = await stream_read(auth, orphan["id"])
    assert [(n, d["sequence_number"]) for n, d in events[:3]] == [
        ("response.created", 0),
        ("response.queued", 1),
        ("response.in_progress", 4),
    ]
    assert text_of(events) == "orphelin"


async def test_a_revoked_key_fails_its_background_response(auth, api_key, api_user, task_lost):
    from api.background import response_run
    from api.services import api_key_revoke
    from workspaces.models import Membership

    shell = await queue(auth, '@reply="trop tard"')
    membership = await Membership.objects.aget(user=api_user)
    await sync_to_async(api_key_revoke)(membership=membership, key=api_key[0])
    await sync_to_async(response_run)(public_id=shell["id"])
    row = await StoredResponse.objects.aget(public_id=shell["id"])
    assert row.status == "failed" and row.body["error"]["code"] == "authentication"


async def test_background_without_being_kept_is_refused(auth, fake_upstream):
    response = await post(
        {"model": "fake-small", "input": "hi", "background": True, "store": False}, auth
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "store"
    assert not await StoredResponse.objects.aexists()


async def test_background_is_refused_when_the_server_keeps_no_responses(auth, settings):
    settings.API_RESPONSES_RETENTION_DAYS = 0
    response = await post({"model": "fake-small", "input": "hi", "background": True}, auth)
    assert response.status_code == 400 and response.json()["error"]["param"] == "background"


async def test_a_response_still_running_cannot_be_followed_yet(auth, task_lost):
    shell = await queue(auth, '@reply="pas fini"')
    response = await post(
        {"model": "fake-small", "input": "next", "previous_response_id": shell["id"]}, auth
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "previous_response_in_progress"


async def test_deleting_a_running_response_stops_its_upstream_call(
    auth, celery_worker, fake_upstream
):
    shell = await queue(auth, "@hang")
    await until(auth, shell["id"], "in_progress")
    assert await fake_upstream.until(lambda: len(fake_upstream.posted()) == 1, timeout=10)
    deleted = await AsyncClient().delete(f"/v1/responses/{shell['id']}", headers=auth)
    assert deleted.status_code == 200
    [call] = fake_upstream.posted()
    assert await fake_upstream.until(lambda: call["disconnected"], timeout=10)
    end = time.monotonic() + 10
    while not await usage_statuses() and time.monotonic() < end:
        await asyncio.sleep(0.05)
    assert await usage_statuses() == ["stopped"]
    assert not await StoredResponse.objects.aexists()


async def test_a_rate_limited_background_response_waits_and_asks_again(
    auth, celery_worker, fake_upstream
):
    shell = await queue(auth, '@reply="enfin" @status=429 @retry_after=1 @times=1')
    done = await until(auth, shell["id"], "completed", "failed")
    assert done["status"] == "completed", done
    assert done["output"][0]["content"][0]["text"] == "enfin"
    assert len(fake_upstream.posted()) == 2  # refused once, answered the second time
    assert await usage_statuses() == ["error", "ok"]


async def test_a_response_cancelled_while_it_waits_to_ask_again_ends_cancelled(
    auth, celery_worker, fake_upstream
):
    shell = await queue(auth, '@reply="jamais" @status=429 @retry_after=30')
    assert await fake_upstream.until(lambda: len(fake_upstream.posted()) == 1, timeout=10)
    await until(auth, shell["id"], "in_progress")
    assert (await cancel(auth, shell["id"])).status_code == 200
    row = await written(shell["id"])
    assert row.status == "cancelled" and row.body["output"] == []
    assert len(fake_upstream.posted()) == 1  # not asked again


async def test_an_unexpected_failure_ends_the_response_failed_not_retried(
    auth, task_lost, fake_upstream
):
    from api.background import response_run

    async def broken(stream, said):
        raise RuntimeError("a bug")

    task_lost.setattr("api.background._said_collect", broken)
    shell = await queue(auth, '@reply="x"')
    await sync_to_async(response_run)(public_id=shell["id"])
    row = await StoredResponse.objects.aget(public_id=shell["id"])
    assert row.status == "failed" and row.body["error"]["code"] == "internal"
    assert row.request is None  # not taken up again by the resume task


# --- Streamed: `stream` with `background`, and GET …?stream=true&starting_after= -------------


async def stream_read(headers, response_id, **query):
    """The events of GET /v1/responses/{id}?stream=true, read to the stream's end."""
    params = "&".join(f"{k}={v}" for k, v in {"stream": "true", **query}.items())
    got = await AsyncClient().get(f"/v1/responses/{response_id}?{params}", headers=headers)
    assert got.status_code == 200, got.content
    assert got["content-type"].startswith("text/event-stream")
    return events_of(got.content)


def text_of(events) -> str:
    return "".join(d["delta"] for name, d in events if name == "response.output_text.delta")


async def test_a_background_response_streams_as_its_worker_says_it_and_replays(
    auth, celery_worker, fake_upstream
):
    response = await post(
        {
            "model": "fake-small",
            "input": "@tokens=30 @delay=0.02",
            "background": True,
            "stream": True,
        },
        auth,
    )
    assert response.status_code == 200, response.content
    events = events_of(response.content)
    names = [name for name, _ in events]
    assert names[:5] == [
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(names[5:-4]) == {"response.output_text.delta"}
    # Its text comes in pieces (several tokens each, as the worker writes them).
    assert 2 <= len(names[5:-4]) < 30
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == sorted(set(numbers))
    created, done = events[0][1]["response"], events[-1][1]["response"]
    assert created["status"] == "queued" and created["background"] is True
    stored = await read(auth, created["id"])
    assert done == stored and stored["status"] == "completed"
    [message] = stored["output"]
    assert (
        text_of(events)
        == message["content"][0]["text"]
        == " ".join(f"tok{i}" for i in range(1, 31))
    )
    assert {d["item_id"] for n, d in events if n == "response.output_text.delta"} == {message["id"]}

    # Read back whole, or taken up after any event: the same events, the same numbers.
    assert await stream_read(auth, created["id"]) == events
    middle = numbers[len(numbers) // 2]
    assert await stream_read(auth, created["id"], starting_after=middle) == [
        e for e in events if e[1]["sequence_number"] > middle
    ]
    assert await stream_read(auth, created["id"], starting_after=numbers[-1]) == []


async def test_a_streamed_background_response_cancelled_midway_ends_cancelled(
    auth, celery_worker, fake_upstream
):
    shell = await queue(auth, "@tokens=400 @delay=0.02")
    reading = asyncio.ensure_future(stream_read(auth, shell["id"]))
    end = time.monotonic() + 20
    while (
        not (await read(auth, shell["id"]))["status"] == "in_progress" or not fake_upstream.requests
    ):
        assert time.monotonic() < end
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # some text said
    assert (await cancel(auth, shell["id"])).status_code == 200
    events = await asyncio.wait_for(reading, 20)
    assert events[-1][0] == "response.cancelled"
    final = events[-1][1]["response"]
    assert final == (await written(shell["id"])).body
    [message] = final["output"]
    assert message["status"] == "incomplete"
    assert text_of(events) == message["content"][0]["text"] != ""


async def test_a_queued_response_cancelled_streams_its_start_and_its_end(auth, task_lost):
    shell = await queue(auth, "@reply=never")
    assert (await cancel(auth, shell["id"])).status_code == 200
    events = await stream_read(auth, shell["id"])
    assert [(n, d["sequence_number"]) for n, d in events] == [
        ("response.created", 0),
        ("response.queued", 1),
        ("response.cancelled", 2),
    ]
    assert events[1][1]["response"]["status"] == "queued"
    assert events[2][1]["response"]["status"] == "cancelled"


async def test_a_reader_of_a_deleted_response_is_told_it_is_gone(auth, task_lost):
    shell = await queue(auth, "@reply=never")
    reading = asyncio.ensure_future(stream_read(auth, shell["id"]))
    await asyncio.sleep(0.3)  # following it, queued
    deleted = await AsyncClient().delete(f"/v1/responses/{shell['id']}", headers=auth)
    assert deleted.status_code == 200
    events = await asyncio.wait_for(reading, 10)
    assert [n for n, _ in events] == ["response.created", "response.queued", "error"]
    assert events[2][1]["code"] == "not_found"


async def test_what_cannot_be_streamed_back_is_refused(auth, task_lost):
    foreground = (await post({"model": "fake-small", "input": '@reply="x"'}, auth)).json()
    shell = await queue(auth, "@reply=never")
    for response_id, query, param in [
        (foreground["id"], "stream=true", "stream"),
        (shell["id"], "stream=maybe", "stream"),
        (shell["id"], "stream=true&starting_after=three", "starting_after"),
    ]:
        got = await AsyncClient().get(f"/v1/responses/{response_id}?{query}", headers=auth)
        assert got.status_code == 400, query
        assert got.json()["error"]["param"] == param


async def test_a_stream_with_nothing_to_say_says_it_is_alive(auth, task_lost, monkeypatch):
    monkeypatch.setattr("api.handlers.KEEPALIVE_SECONDS", 0.2)
    shell = await queue(auth, "@reply=never")  # queued: nothing more to say until it runs
    path = f"/v1/responses/{shell['id']}?stream=true"
    reading = asyncio.ensure_future(AsyncClient().get(path, headers=auth))
    await asyncio.sleep(1.2)
    assert (await cancel(auth, shell["id"])).status_code == 200
    content = (await asyncio.wait_for(reading, 10)).content
    assert content.count(b": keepalive\n\n") >= 2  # an SSE comment: readers skip it
    events = events_of(content.replace(b": keepalive\n\n", b""))
    assert [name for name, _ in events] == [
        "response.created",
        "response.queued",
        "response.cancelled",
    ]
