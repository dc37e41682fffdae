"""A services-mode server whose Redis stops while an answer streams, then comes back. The
server has a Redis of its own here, so that stopping it touches nothing else."""

import asyncio
import shutil
import subprocess
import uuid
from contextlib import contextmanager

import aiohttp
import pytest

from chat.generation import NOT_STARTED_MESSAGE
from tests.chat.helpers import ws_chat_connect, ws_frames_until
from tests.conftest import SERVICES_MODE
from tests.factories import PASSWORD
from tests.fixtures.servers import free_port

pytestmark = [
    pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]


@contextmanager
def _redis_on(port: int):
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port)]
        + ["--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _finished(frame) -> bool:
    return frame["type"] in ("generation_finished", "error")


async def _ready(http, server) -> bool:
    for _ in range(100):
        async with http.get(server.url + "/readyz") as response:
            if response.status == 200:
                return True
        await asyncio.sleep(0.1)
    return False


async def test_redis_stopping_mid_stream_loses_nothing_and_the_chat_recovers_with_it(
    start_aurax_server, fake_upstream
):
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    with _redis_on(port) as redis:
        server = start_aurax_server(
            embedded=False,
            REDIS_URL=redis_url,
            CELERY_BROKER_URL=redis_url,
            PROVIDER_TRUST_ENV="false",
        )
        credential_id = server.credential_for(fake_upstream.base_url("openai"))
        email = f"redis-{uuid.uuid4().hex[:8]}@example.com"
        session = server.session_for(email, PASSWORD)
        key = server.manage("create_api_key", "--user", email, "--name", "sdk").stdout.strip()
        api = {"Authorization": f"Bearer {key}"}
        completion = {
            "model": f"{credential_id}:fake-small",
            "messages": [{"role": "user", "content": "@reply=hello"}],
        }
        async with aiohttp.ClientSession() as http:
            ws = await ws_chat_connect(http, server, session)
            await ws.send_json(
                {
                    "type": "send",
                    "content": "@tokens=200 @delay=0.01 owls",
                    "model": f"{credential_id}:fake-small",
                }
            )
            frames = await ws_frames_until(ws, lambda f: f["type"] == "delta")
            redis.terminate()
            await asyncio.to_thread(redis.wait, 10)
            frames += await ws_frames_until(ws, _finished, timeout=30)
            started = next(f for f in frames if f["type"] == "generation_started")
            conversation_id = started["conversation_id"]

            # The tab saw the whole answer: this process's frames do not need Redis.
            assert frames[-1]["type"] == "generation_finished", frames[-1]
            assert frames[-1]["status"] == "complete"
            words = [f"tok{i}" for i in range(1, 201)]
            assert "".join(f["text"] for f in frames if f["type"] == "delta").split() == words

            # While Redis is down a send is answered at once, with an error to retry.
            await ws.send_json(
                {"type": "send", "conversation_id": conversation_id, "content": "@tokens=5"}
            )
            refused = (await ws_frames_until(ws, _finished, timeout=30))[-1]
            assert refused["type"] == "generation_finished" and refused["status"] == "error"
            assert refused["error_message"] == NOT_STARTED_MESSAGE
            async with http.get(server.url + "/readyz") as response:
                assert response.status == 503
            # The API says so the way OpenAI's SDKs retry on: 503 with Retry-After.
            async with http.post(
                server.url + "/v1/chat/completions", json=completion, headers=api
            ) as response:
                assert response.status == 503 and response.headers["Retry-After"] == "5"
                assert (await response.json())["error"]["code"] == "unavailable"

            # Redis back (empty, as after a restart): the same socket's next send streams.
            with _redis_on(port):
                assert await _ready(http, server), server.log()[-3000:]
                await ws.send_json(
                    {"type": "send", "conversation_id": conversation_id, "content": "@tokens=5"}
                )
                again = await ws_frames_until(ws, _finished, timeout=30)
                assert again[-1]["type"] == "generation_finished", again[-1]
                assert again[-1]["status"] == "complete"
                assert "".join(f["text"] for f in again if f["type"] == "delta").split() == [
                    "tok1",
                    "tok2",
                    "tok3",
                    "tok4",
                    "tok5",
                ]
                async with http.post(
                    server.url + "/v1/chat/completions", json=completion, headers=api
                ) as response:
                    assert response.status == 200
                    answer = await response.json()
                    assert answer["choices"][0]["message"]["content"] == "hello"
            await ws.close()

    saved = server.shell_json(
        "import json\n"
        "from billing.models import UsageEvent\n"
        "from chat.models import Message\n"
        f"m = Message.objects.get(pk={started['message_id']})\n"
        "rows = UsageEvent.objects.filter(reference=f'chat.message:{m.pk}')\n"
        "print(json.dumps({'status': m.status, 'content': m.content,"
        " 'usage': [[r.status, r.output_tokens] for r in rows]}))\n"
    )
    assert saved["status"] == "complete" and saved["content"].split() == words
    assert saved["usage"] == [["ok", 200]]  # billed once, in full
    # The failed publishes of the answer's frames were reported, not one line per frame.
    assert 1 <= server.log().count("publishing a channel layer message failed") <= 3
