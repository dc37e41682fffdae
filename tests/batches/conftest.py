import json

import httpx
import pytest

from tests.api.conftest import (  # noqa: F401  the /v1 API's keys, and its quick providers
    _fast_providers,
    _shared_http_client_closed,
    api_key,
    api_user,
    auth,
    credential,
)
from tests.billing.conftest import celery_worker  # noqa: F401


@pytest.fixture(autouse=True)
def _batches_quick(settings):
    settings.BATCH_CHECK_SECONDS = 0.05


@pytest.fixture
def task_lost(monkeypatch):
    """Batches created while this is on get no task queued, as if their task were lost (the
    broker restarted empty): only the resume task, or a direct run, takes them up."""
    monkeypatch.setattr("batches.services._run_on_commit", lambda batch_id: None)
    return monkeypatch


async def v1(method: str, path: str, headers: dict, **kwargs) -> httpx.Response:
    """A call to the /v1 ASGI app in this process."""
    from aurax.asgi import application

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    ) as client:
        return await client.request(method, path, headers=headers, **kwargs)


def chat_line(custom_id: str, content: str, model: str = "fake-small", **body) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": content}], **body},
    }


def jsonl(*lines) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


async def upload(headers: dict, data: bytes, purpose: str = "batch", filename="input.jsonl"):
    return await v1(
        "POST",
        "/v1/files",
        headers,
        data={"purpose": purpose},
        files={"file": (filename, data, "application/jsonl")},
    )


async def batch_start(headers: dict, data: bytes, **fields) -> dict:
    uploaded = await upload(headers, data)
    assert uploaded.status_code == 200, uploaded.text
    created = await v1(
        "POST",
        "/v1/batches",
        headers,
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            **fields,
        },
    )
    assert created.status_code == 200, created.text
    return created.json()


async def batch_until(headers: dict, batch_id: str, *statuses: str, timeout: float = 20.0):
    import asyncio
    import time

    statuses = statuses or ("completed", "failed", "cancelled", "expired")
    deadline = time.monotonic() + timeout
    while True:
        batch = (await v1("GET", f"/v1/batches/{batch_id}", headers)).json()
        if batch["status"] in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch still {batch['status']}: {batch}")
        await asyncio.sleep(0.05)


async def file_lines(headers: dict, file_id: str) -> list[dict]:
    response = await v1("GET", f"/v1/files/{file_id}/content", headers)
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]
