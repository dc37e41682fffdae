"""The official `openai` SDK's Batch API calls, unchanged, against `bin/serve` (the web server
and its Celery worker, as `make run` starts them) with the fake upstream as the provider."""

import contextlib
import json
import os
import signal
import subprocess
import time

import openai
import pytest

from tests.fixtures.servers import AuraxServer, bin_serve_start, make_server_env


@pytest.fixture(scope="module")
def served(tmp_path_factory, _fake_upstream_server, _static_collected):
    directory = tmp_path_factory.mktemp("aurax-batches")
    env = {
        "OPENAI_API_KEY": "sk-upstream-batches",
        "OPENAI_BASE_URL": _fake_upstream_server.base_url("openai"),
        "PROVIDER_RETRY_ATTEMPTS": "1",
        "BATCH_CHECK_SECONDS": "0.2",
    }
    process, port = bin_serve_start(directory, embedded=True, start_new_session=True, **env)
    try:
        server = AuraxServer(data_dir=directory, env=make_server_env(directory, **env))
        server.manage("aurax_startup")
        server.manage("providers", "check", "--refresh")
        server.create_user("batch@example.com", "a long passphrase 42")
        key = server.manage(
            "create_api_key", "--user", "batch@example.com", "--name", "batches"
        ).stdout.strip()
        yield {"url": f"http://127.0.0.1:{port}", "key": key, "log": process.log_path}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        # Whatever of its session is left (a worker slow to stop) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def oai(served):
    return openai.OpenAI(base_url=served["url"] + "/v1", api_key=served["key"], max_retries=0)


def request_line(custom_id: str, content: str) -> str:
    body = {"model": "fake-small", "messages": [{"role": "user", "content": content}]}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def until_done(oai, batch_id: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        batch = oai.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)


def test_the_openai_sdk_runs_a_batch_from_upload_to_results(oai, tmp_path, served):
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "\n".join(request_line(f"q{n}", f'@reply="Answer {n}"') for n in range(5)) + "\n"
    )
    uploaded = oai.files.create(file=path.open("rb"), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.filename == "requests.jsonl"

    batch = oai.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status == "validating"
    done = until_done(oai, batch.id)
    assert done.status == "completed", served["log"].read_text()[-3000:]
    assert (done.request_counts.total, done.request_counts.completed) == (5, 5)
    assert done.metadata == {"job": "nightly"}
    assert done.usage.output_tokens > 0

    results = [
        json.loads(line) for line in oai.files.content(done.output_file_id).text.splitlines()
    ]
    answers = {
        line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
        for line in results
    }
    assert answers == {f"q{n}": f"Answer {n}" for n in range(5)}
    assert [b.id for b in oai.batches.list(limit=5)] == [batch.id]
    assert {f.id for f in oai.files.list()} == {uploaded.id, done.output_file_id}
    assert oai.files.delete(uploaded.id).deleted is True


def test_the_openai_sdk_cancels_a_batch(oai, tmp_path):
    path = tmp_path / "slow.jsonl"
    path.write_text(request_line("stuck", "@hang") + "\n")
    batch = oai.batches.create(
        input_file_id=oai.files.create(file=path.open("rb"), purpose="batch").id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    deadline = time.monotonic() + 30
    while oai.batches.retrieve(batch.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert oai.batches.cancel(batch.id).status == "cancelling"
    done = until_done(oai, batch.id)
    assert done.status == "cancelled" and done.output_file_id is None
    [line] = [json.loads(x) for x in oai.files.content(done.error_file_id).text.splitlines()]
    assert line["custom_id"] == "stuck" and line["error"]["code"] == "batch_cancelled"


def test_the_openai_sdk_sees_a_missing_batch_as_not_found(oai):
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_doesnotexist")
    with pytest.raises(openai.BadRequestError):
        oai.files.create(file=("x.jsonl", b"not json\n"), purpose="batch")
