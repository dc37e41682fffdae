"""/v1/batches: a batch's requests run by a real Celery worker through the pipeline against
the fake upstream over HTTP, its results written to files, billed request by request."""

import asyncio
import base64
import struct
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from batches.models import Batch, BatchRequest
from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.batches.conftest import batch_start, batch_until, chat_line, file_lines, jsonl, v1

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def usage_rows(reference: str) -> list[UsageEvent]:
    ledger_flush()
    return list(UsageEvent.objects.filter(reference=reference).order_by("pk"))


async def test_a_batch_runs_every_request_and_writes_the_answers_in_the_inputs_order(
    auth, api_key, celery_worker, fake_upstream
):
    batch = await batch_start(
        auth,
        jsonl(
            chat_line("first", '@reply="Un deux"'),
            chat_line("second", '@reply="Trois"', max_tokens=50),
            chat_line("third", '@reply="Quatre cinq six" @cached=20 @reasoning=2'),
        ),
        metadata={"project": "tests"},
    )
    assert batch["status"] == "validating" and batch["id"].startswith("batch_")
    assert batch["metadata"] == {"project": "tests"}

    done = await batch_until(auth, batch["id"])
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert done["error_file_id"] is None
    for moment in ("in_progress_at", "finalizing_at", "completed_at"):
        assert done[moment] >= done["created_at"]

    lines = await file_lines(auth, done["output_file_id"])
    assert [line["custom_id"] for line in lines] == ["first", "second", "third"]
    answers = [line["response"]["body"]["choices"][0]["message"]["content"] for line in lines]
    assert answers == ["Un deux", "Trois", "Quatre cinq six"]
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in lines)
    assert lines[0]["response"]["body"]["object"] == "chat.completion"

    # Billed one usage event a request, as the batch's key, and summed on the batch.
    rows = await usage_rows(done["id"])
    assert len(rows) == 3
    assert {(row.source, row.api_key_id, row.status) for row in rows} == {
        ("batch", api_key[0].pk, "ok")
    }
    assert done["usage"]["input_tokens"] == sum(row.input_tokens for row in rows) > 0
    assert done["usage"]["output_tokens"] == sum(row.output_tokens for row in rows) > 0
    # The provider's cached prompt and reasoning tokens: on the answer, the ledger, the batch.
    third = lines[2]["response"]["body"]["usage"]
    assert third["prompt_tokens_details"] == {"cached_tokens": 20}
    assert third["completion_tokens_details"] == {"reasoning_tokens": 2}
    assert sorted((row.cache_read_tokens, row.reasoning_tokens) for row in rows) == [
        (0, 0),
        (0, 0),
        (20, 2),
    ]
    assert done["usage"]["input_tokens_details"] == {"cached_tokens": 20}
    assert done["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}
    output = (await v1("GET", f"/v1/files/{done['output_file_id']}", auth)).json()
    assert output["purpose"] == "batch_output"
    assert {p["path"] for p in fake_upstream.posted()} == {"/v1/chat/completions"}
    assert len(fake_upstream.posted()) == 3


def embedding_line(custom_id: str, text, model: str = "fake-small", **body) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": model, "input": text, **body},
    }


async def test_an_embeddings_batch_answers_as_v1_embeddings_does_each_request_billed(
    auth, api_key, celery_worker, fake_upstream
):
    batch = await batch_start(
        auth,
        jsonl(
            embedding_line("one", "hello world"),
            embedding_line("two", ["first text", "second"]),
            embedding_line("three", "hello world", encoding_format="base64"),
        ),
        endpoint="/v1/embeddings",
    )
    assert batch["endpoint"] == "/v1/embeddings"
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}

    lines = await file_lines(auth, done["output_file_id"])
    assert [line["custom_id"] for line in lines] == ["one", "two", "three"]
    bodies = [line["response"]["body"] for line in lines]
    assert [b["object"] for b in bodies] == ["list"] * 3
    assert [len(b["data"]) for b in bodies] == [1, 2, 1]
    # The same vectors as the endpoint itself gives, in the encoding asked for.
    direct = (
        await v1(
            "POST", "/v1/embeddings", auth, json={"model": "fake-small", "input": "hello world"}
        )
    ).json()
    assert bodies[0]["data"][0]["embedding"] == direct["data"][0]["embedding"]
    decoded = base64.b64decode(bodies[2]["data"][0]["embedding"])
    assert struct.unpack(f"<{len(decoded) // 4}f", decoded) == pytest.approx(
        direct["data"][0]["embedding"]
    )

    rows = await usage_rows(done["id"])
    assert len(rows) == 3
    assert {(row.source, row.api_key_id, row.status, row.output_tokens) for row in rows} == {
        ("batch", api_key[0].pk, "ok", 0)
    }
    assert sorted(row.input_tokens for row in rows) == sorted(
        b["usage"]["prompt_tokens"] for b in bodies
    )
    assert done["usage"]["input_tokens"] == sum(row.input_tokens for row in rows) > 0


def response_line(custom_id: str, text, **body) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "fake-small", "input": text, **body},
    }


async def test_a_responses_batch_answers_as_v1_responses_does_each_request_billed(
    auth, api_key, celery_worker
):
    batch = await batch_start(
        auth,
        jsonl(
            response_line("one", '@reply="Un deux"', instructions="Be brief."),
            response_line("two", "@tokens=3 @finish=length", max_output_tokens=3),
        ),
        endpoint="/v1/responses",
    )
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "completed", done
    lines = await file_lines(auth, done["output_file_id"])
    bodies = [line["response"]["body"] for line in lines]
    assert [b["object"] for b in bodies] == ["response"] * 2
    assert [b["status"] for b in bodies] == ["completed", "incomplete"]
    assert bodies[0]["output"][0]["content"][0]["text"] == "Un deux"
    assert bodies[0]["instructions"] == "Be brief."
    assert bodies[1]["incomplete_details"] == {"reason": "max_output_tokens"}
    rows = await usage_rows(done["id"])
    assert {(row.source, row.api_key_id) for row in rows} == {("batch", api_key[0].pk)}
    assert sorted(row.output_tokens for row in rows) == sorted(
        b["usage"]["output_tokens"] for b in bodies
    )


async def test_a_responses_batch_line_asking_what_is_not_implemented_fails_naming_it(
    auth, celery_worker
):
    batch = await batch_start(
        auth,
        jsonl(response_line("one", "hi", previous_response_id="resp_1")),
        endpoint="/v1/responses",
    )
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "failed"
    [error] = done["errors"]["data"]
    assert error["line"] == 1 and error["param"] == "body.previous_response_id"
    assert "cannot follow a stored response" in error["message"]


async def test_an_embeddings_batch_with_a_wrong_request_fails_naming_its_line(auth, celery_worker):
    batch = await batch_start(
        auth,
        jsonl(
            embedding_line("a", "hi"),
            chat_line("b", "hi"),
            embedding_line("c", ""),
            {**embedding_line("d", "hi"), "url": "/v1/chat/completions"},
        ),
        endpoint="/v1/embeddings",
    )
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "failed"
    by_line = {error["line"]: error for error in done["errors"]["data"]}
    assert sorted(by_line) == [2, 3, 4]
    assert by_line[2]["code"] == "mismatched_endpoint"
    assert by_line[3]["param"] == "body.input"
    assert by_line[4]["code"] == "mismatched_endpoint"


async def test_a_request_that_fails_goes_to_the_error_file_and_the_rest_still_run(
    auth, celery_worker
):
    batch = await batch_start(
        auth,
        jsonl(
            chat_line("good", '@reply="Fine"'),
            chat_line("refused", "@error=context"),
            chat_line("unknown", "hi", model="no-such-model"),
        ),
    )
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 3, "completed": 1, "failed": 2}
    [good] = await file_lines(auth, done["output_file_id"])
    assert good["custom_id"] == "good"
    errors = {line["custom_id"]: line for line in await file_lines(auth, done["error_file_id"])}
    assert set(errors) == {"refused", "unknown"}
    refused = errors["refused"]["response"]
    assert refused["status_code"] == 400
    assert refused["body"]["error"]["code"] == "context_too_long"
    assert errors["unknown"]["response"]["body"]["error"]["code"] == "model_unavailable"


async def test_a_batch_request_s_files_reach_the_model_and_a_damaged_one_fails_alone(
    auth, celery_worker, fake_upstream
):
    from tests.chat.files import pdf

    def with_file(custom_id: str, data: bytes) -> dict:
        encoded = "data:application/pdf;base64," + base64.b64encode(data).decode()
        content = [
            {"type": "text", "text": '@reply="Read"'},
            {"type": "file", "file": {"filename": "r.pdf", "file_data": encoded}},
        ]
        return chat_line(custom_id, content)

    batch = await batch_start(
        auth,
        jsonl(with_file("good", pdf("Revenue rose")), with_file("bad", b"%PDF-1.4 broken")),
    )
    done = await batch_until(auth, batch["id"])
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [sent] = [r for r in fake_upstream.posted() if r["path"].endswith("/chat/completions")]
    assert "Revenue rose" in sent["json"]["messages"][-1]["content"]
    [error] = await file_lines(auth, done["error_file_id"])
    assert error["custom_id"] == "bad"
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["code"] == "invalid_file"


async def test_a_rate_limited_request_waits_and_is_asked_again(auth, celery_worker, fake_upstream):
    batch = await batch_start(
        auth, jsonl(chat_line("patient", '@status=429 @retry_after=0.2 @times=1 @reply="Done"'))
    )
    done = await batch_until(auth, batch["id"])
    assert done["request_counts"]["completed"] == 1, done
    [line] = await file_lines(auth, done["output_file_id"])
    assert line["response"]["body"]["choices"][0]["message"]["content"] == "Done"
    assert len(fake_upstream.posted()) == 2


async def test_a_batch_whose_requests_are_wrong_fails_naming_each_line(auth, celery_worker):
    from api.models import ApiKey

    await ApiKey.objects.aupdate(allowed_models=["fake-small"])
    from api.services import api_keys_changed

    await sync_to_async(api_keys_changed)()
    batch = await batch_start(
        auth,
        jsonl(
            chat_line("a", "hi"),
            chat_line("a", "again"),
            {**chat_line("b", "hi"), "url": "/v1/embeddings"},
            chat_line("c", "hi", stream=True),
            chat_line("d", "hi", model="fake-large"),
            {**chat_line("e", "hi"), "body": {"model": "fake-small", "messages": "nope"}},
            {"method": "POST", "url": "/v1/chat/completions", "body": {}},
        ),
    )
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "failed" and done["failed_at"] is not None
    assert done["output_file_id"] is None and done["request_counts"]["total"] == 0
    by_line = {error["line"]: error for error in done["errors"]["data"]}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7]
    assert by_line[2]["code"] == "duplicate_custom_id"
    assert by_line[3]["code"] == "mismatched_endpoint"
    assert "Streaming" in by_line[4]["message"]
    assert by_line[5]["code"] == "model_not_allowed"
    assert by_line[6]["param"] == "body.messages"
    assert by_line[7]["param"] == "custom_id"


@pytest.mark.parametrize(
    "make_line, endpoint",
    [(chat_line, "/v1/chat/completions"), (embedding_line, "/v1/embeddings")],
    ids=["completions", "embeddings"],
)
async def test_a_cancelled_batch_stops_its_upstream_calls_and_keeps_what_was_answered(
    auth, celery_worker, fake_upstream, settings, make_line, endpoint
):
    settings.BATCH_CONCURRENCY = 1
    batch = await batch_start(
        auth,
        jsonl(
            make_line("quick", '@reply="Quick"'),
            make_line("slow", "@hang"),
            make_line("never", "Never"),
        ),
        endpoint=endpoint,
    )
    assert await fake_upstream.until(lambda: len(fake_upstream.posted()) == 2, timeout=20)
    await asyncio.sleep(0.3)
    cancelled = await v1("POST", f"/v1/batches/{batch['id']}/cancel", auth)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] in ("cancelling", "cancelled")

    done = await batch_until(auth, batch["id"])
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    slow = fake_upstream.posted()[1]
    assert await fake_upstream.until(lambda: slow["disconnected"], timeout=5)
    assert len(fake_upstream.posted()) == 2  # "never" was never asked
    [quick] = await file_lines(auth, done["output_file_id"])
    assert quick["custom_id"] == "quick"
    not_run = await file_lines(auth, done["error_file_id"])
    assert [(line["custom_id"], line["error"]["code"]) for line in not_run] == [
        ("slow", "batch_cancelled"),
        ("never", "batch_cancelled"),
    ]
    # The stopped request is on the ledger, as the chat's stop is (an embeddings request
    # too: stopped by the cancel, not cut off later as a client gone away).
    statuses = sorted(row.status for row in await usage_rows(batch["id"]))
    assert statuses == ["ok", "stopped"]
    again = await v1("POST", f"/v1/batches/{batch['id']}/cancel", auth)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


async def test_a_finished_batch_cannot_be_cancelled(auth, celery_worker):
    batch = await batch_start(auth, jsonl(chat_line("a", "hi")))
    await batch_until(auth, batch["id"])
    refused = await v1("POST", f"/v1/batches/{batch['id']}/cancel", auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "batch_not_cancellable"


run_here = sync_to_async(lambda public_id: _run(public_id))


def _run(public_id: str) -> None:
    from batches.services import batch_run

    batch_run(batch_id=Batch.objects.get(public_id=public_id).pk)


def _revoke(key) -> None:
    from api.services import api_key_revoke
    from workspaces.models import Membership

    membership = Membership.objects.get(user_id=key.user_id, workspace_id=key.workspace_id)
    api_key_revoke(membership=membership, key=key)


async def test_requests_fail_once_the_batchs_key_is_revoked(auth, api_key, task_lost):
    batch = await batch_start(auth, jsonl(chat_line("a", "hi"), chat_line("b", "hi")))
    await sync_to_async(_revoke)(api_key[0])
    await run_here(batch["id"])
    done = await sync_to_async(Batch.objects.get)(public_id=batch["id"])
    assert (done.status, done.completed, done.failed) == ("completed", 0, 2)
    requests = await sync_to_async(list)(done.requests.all())
    assert {r.status_code for r in requests} == {401}
    assert all("revoked" in r.response["error"]["message"] for r in requests)


async def test_a_batch_left_by_a_dead_worker_is_taken_up_from_where_it_stopped(
    auth, celery_worker, fake_upstream, task_lost
):
    from batches.services import batches_resume

    batch = await batch_start(auth, jsonl(chat_line("a", '@reply="A"'), chat_line("b", "@reply=B")))
    task_lost.undo()
    # A worker is running it: the resume task leaves it alone, a second run does nothing.
    await sync_to_async(_left_by_worker)(batch["id"], minutes_ago=0)
    assert await sync_to_async(batches_resume)() == 0
    await run_here(batch["id"])
    assert fake_upstream.posted() == []

    # Its worker went silent: the resume task queues it, and the worker finishes it.
    await sync_to_async(_left_by_worker)(batch["id"], minutes_ago=10)
    assert await sync_to_async(batches_resume)() == 1
    assert await sync_to_async(batches_resume)() == 0  # queued: not again at the next check
    done = await batch_until(auth, batch["id"])
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    lines = await file_lines(auth, done["output_file_id"])
    assert lines[0]["response"]["body"] == {"kept": True}  # answered before: not asked again
    assert lines[1]["response"]["body"]["choices"][0]["message"]["content"] == "B"
    assert len(fake_upstream.posted()) == 1


def _left_by_worker(public_id: str, *, minutes_ago: int) -> None:
    """The state a worker leaves that answered the first request and then was killed."""
    from batches.services import batch_validate

    batch = Batch.objects.get(public_id=public_id)
    if batch.status == Batch.Status.VALIDATING:
        batch_validate(batch=batch)
        BatchRequest.objects.filter(batch=batch, custom_id="a").update(
            status="succeeded", status_code=200, response={"kept": True}
        )
    Batch.objects.filter(pk=batch.pk).update(
        completed=1,
        runner="another",
        heartbeat_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


async def test_a_batch_past_its_window_expires_with_its_requests_said_not_run(
    auth, fake_upstream, task_lost
):
    batch = await batch_start(auth, jsonl(chat_line("a", "hi"), chat_line("b", "hi")))
    await Batch.objects.filter(public_id=batch["id"]).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    await run_here(batch["id"])
    done = (await v1("GET", f"/v1/batches/{batch['id']}", auth)).json()
    assert done["status"] == "expired" and done["expired_at"] is not None
    assert done["output_file_id"] is None
    lines = await file_lines(auth, done["error_file_id"])
    assert [(line["custom_id"], line["error"]["code"]) for line in lines] == [
        ("a", "batch_expired"),
        ("b", "batch_expired"),
    ]
    assert fake_upstream.posted() == []


async def test_batches_are_listed_newest_first_and_nobody_else_sees_them(auth, task_lost):
    from tests.batches.test_files import other_key

    first = await batch_start(auth, jsonl(chat_line("a", "hi")))
    second = await batch_start(auth, jsonl(chat_line("a", "hi")))
    listed = (await v1("GET", "/v1/batches?limit=1", auth)).json()
    assert [b["id"] for b in listed["data"]] == [second["id"]] and listed["has_more"]
    rest = (await v1("GET", f"/v1/batches?after={second['id']}", auth)).json()
    assert [b["id"] for b in rest["data"]] == [first["id"]] and not rest["has_more"]

    stranger = await other_key()
    assert (await v1("GET", "/v1/batches", stranger)).json()["data"] == []
    for method, path in (
        ("GET", f"/v1/batches/{first['id']}"),
        ("POST", f"/v1/batches/{first['id']}/cancel"),
    ):
        assert (await v1(method, path, stranger)).status_code == 404
    still = (await v1("GET", f"/v1/batches/{first['id']}", auth)).json()
    assert still["status"] == "validating"


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"endpoint": "/v1/completions"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"metadata": {"k": 5}}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"input_file_id": "file-nothere"}, "input_file_id"),
        ({"output_expires_after": {"anchor": "created_at", "seconds": 60}}, "output_expires_after"),
        ({"output_expires_after": {"seconds": 7200}}, "output_expires_after"),
    ],
)
async def test_a_batch_asked_wrongly_is_refused_before_it_starts(auth, task_lost, fields, param):
    from tests.batches.conftest import upload

    file = (await upload(auth, jsonl(chat_line("a", "hi")))).json()
    body = {
        "input_file_id": file["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    response = await v1("POST", "/v1/batches", auth, json=body)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] == param
    assert await Batch.objects.acount() == 0


async def test_an_output_file_cannot_start_a_batch(auth, celery_worker):
    batch = await batch_start(auth, jsonl(chat_line("a", "hi")))
    done = await batch_until(auth, batch["id"])
    response = await v1(
        "POST",
        "/v1/batches",
        auth,
        json={
            "input_file_id": done["output_file_id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "input_file_id"


async def test_the_api_docs_batch_line_runs_as_pasted(api_user, auth, celery_worker):
    import html
    import re

    from django.test import Client

    @sync_to_async
    def docs():
        client = Client()
        client.force_login(api_user)
        return client.get("/settings/api-docs/").content.decode()

    line = re.search(r'<code class="batch-line">(.*?)</code>', await docs()).group(1)
    batch = await batch_start(auth, html.unescape(line).encode() + b"\n")
    done = await batch_until(auth, batch["id"])
    assert done["request_counts"] == {"total": 1, "completed": 1, "failed": 0}, done


async def test_a_long_batch_runs_in_slices_each_its_own_task(auth, celery_worker, settings):
    from celery.signals import task_prerun

    settings.BATCH_SLICE_SECONDS = 0  # one request a slice
    settings.BATCH_CONCURRENCY = 1
    runs = []

    def counted(sender=None, **kwargs):
        if sender.name == "batches.batch_run":
            runs.append(kwargs["task_id"])

    task_prerun.connect(counted, weak=False)
    try:
        lines = [chat_line(f"q{n}", f'@reply="A{n}"') for n in range(3)]
        done = await batch_until(auth, (await batch_start(auth, jsonl(*lines)))["id"])
    finally:
        task_prerun.disconnect(counted)
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert len(set(runs)) == 3  # a slice a request (the last one writes the results)
    answers = [
        line["response"]["body"]["choices"][0]["message"]["content"]
        for line in await file_lines(auth, done["output_file_id"])
    ]
    assert answers == ["A0", "A1", "A2"]


async def test_a_batch_made_while_the_broker_is_away_is_kept_and_run_once_it_is_back(
    auth, fake_upstream, monkeypatch
):
    from aurax.celery import app
    from batches import services

    # A broker nobody answers at, with connection pools of its own; the working ones are put
    # back untouched afterwards.
    working = (app.conf.broker_url, app.conf.broker_transport_options)
    pools = (app._pool, app.amqp._producer_pool)
    app._pool = app.amqp._producer_pool = None
    app.conf.broker_url, app.conf.broker_transport_options = "redis://127.0.0.1:1/0", {}
    try:
        batch = await batch_start(auth, jsonl(chat_line("a", '@reply="Later"')))
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool, app.amqp._producer_pool = pools
        app.conf.broker_url, app.conf.broker_transport_options = working
    assert batch["status"] == "validating"

    # Once the broker is back, the resume task queues it (to this test, not the broker).
    queued = []
    monkeypatch.setattr(services, "_run_now", queued.append)
    await Batch.objects.filter(public_id=batch["id"]).aupdate(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    assert await sync_to_async(services.batches_resume)() == 1
    assert queued == [await Batch.objects.values_list("pk", flat=True).aget(public_id=batch["id"])]
    await run_here(batch["id"])
    done = (await v1("GET", f"/v1/batches/{batch['id']}", auth)).json()
    assert done["status"] == "completed" and done["request_counts"]["completed"] == 1


async def test_a_batch_s_results_expire_when_it_says_else_after_30_days(auth, celery_worker):
    from batches.models import BatchFile

    asked = await batch_start(
        auth,
        jsonl(chat_line("a", "hi"), chat_line("b", "hi", model="no-such-model")),
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )
    plain = await batch_start(auth, jsonl(chat_line("a", "hi")))
    asked, plain = await batch_until(auth, asked["id"]), await batch_until(auth, plain["id"])

    async def lifetime(file_id: str) -> float:
        file = await BatchFile.objects.aget(public_id=file_id)
        described = (await v1("GET", f"/v1/files/{file_id}", auth)).json()
        assert described["expires_at"] == int(file.expires_at.timestamp())
        return (file.expires_at - file.created_at).total_seconds()

    assert await lifetime(asked["output_file_id"]) == pytest.approx(7200, abs=2)
    assert await lifetime(asked["error_file_id"]) == pytest.approx(7200, abs=2)
    assert await lifetime(plain["output_file_id"]) == pytest.approx(30 * 86400, abs=2)


async def test_files_and_batches_answer_the_bodies_the_openapi_document_says(auth, celery_worker):
    from tests.api.test_openapi import answer_schema, valid
    from tests.batches.conftest import upload

    document = (await v1("GET", "/v1/openapi.json", {})).json()

    def check(body, path, method="post"):
        assert valid(body, answer_schema(document, path, method)) == [], (path, body)

    uploaded = (await upload(auth, jsonl(chat_line("one", '@reply="Un"')))).json()
    check(uploaded, "/files")
    check((await v1("GET", "/v1/files", auth)).json(), "/files", "get")
    check((await v1("GET", f"/v1/files/{uploaded['id']}", auth)).json(), "/files/{file_id}", "get")

    done = await batch_until(auth, (await batch_start(auth, jsonl(chat_line("q", "hi"))))["id"])
    check(done, "/batches/{batch_id}", "get")
    failed = await batch_until(auth, (await batch_start(auth, jsonl({"custom_id": "x"})))["id"])
    assert failed["status"] == "failed" and failed["errors"]
    check(failed, "/batches/{batch_id}", "get")
    check((await v1("GET", "/v1/batches", auth)).json(), "/batches", "get")
    deleted = await v1("DELETE", f"/v1/files/{uploaded['id']}", auth)
    check(deleted.json(), "/files/{file_id}", "delete")
