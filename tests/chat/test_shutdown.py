"""A server process asked to stop (SIGTERM: a deploy, a restart) while answers stream."""

import asyncio
import contextlib
import json
import signal
import uuid

import aiohttp
import pytest

from tests.chat.helpers import ws_chat_connect, ws_frames_until
from tests.conftest import SERVICES_MODE
from tests.factories import PASSWORD


@pytest.mark.parametrize(
    "embedded",
    [
        pytest.param(True, id="embedded"),
        pytest.param(
            False,
            id="services",
            marks=pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL"),
        ),
    ],
)
async def test_sigterm_mid_stream_saves_the_answer_as_interrupted_and_bills_what_was_streamed(
    start_aurax_server, fake_upstream, embedded
):
    server = start_aurax_server(embedded=embedded, PROVIDER_TRUST_ENV="false")
    credential_id = server.credential_for(fake_upstream.base_url("openai"))
    session = server.session_for(f"stop-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    async with aiohttp.ClientSession() as http:
        ws = await ws_chat_connect(http, server, session)
        await ws.send_json(
            {
                "type": "send",
                "content": "@tokens=2000 @delay=0.02",
                "model": f"{credential_id}:fake-small",
            }
        )
        started = (await ws_frames_until(ws, lambda f: f["type"] == "generation_started"))[-1]
        frames = await ws_frames_until(
            ws, lambda f: f["type"] == "delta" and f["offset"] + len(f["text"]) > 200
        )
        shown = "".join(f["text"] for f in frames if f["type"] == "delta")

        server.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(server.process.wait, 30)
        await ws.close()

    assert returncode == 0, server.log()
    assert "Unclosed client session" not in server.log()  # the provider client closed too
    # The upstream call was closed, not left to run out.
    assert await fake_upstream.until(lambda: fake_upstream.requests[-1]["disconnected"])
    answer = server.shell_json(
        "import json\n"
        "from chat.models import Message\n"
        f"m = Message.objects.get(pk={started['message_id']})\n"
        "print(json.dumps({'status': m.status, 'content': m.content,"
        " 'error_code': m.error_code, 'output_tokens': m.output_tokens}))\n",
    )
    assert answer["status"] == "interrupted"
    assert answer["error_code"] == "interrupted"
    # Everything a tab showed is kept (the text the upstream sent after it, too).
    assert answer["content"].startswith(shown) and len(answer["content"]) < len(shown) + 2000
    usage = server.shell_json(
        "import json\n"
        "from billing.models import UsageEvent\n"
        "from billing.tokens import tokens_estimate\n"
        f"reference = 'chat.message:{started['message_id']}'\n"
        "rows = UsageEvent.objects.filter(reference=reference)\n"
        f"produced = tokens_estimate(text={answer['content']!r}, model='fake-small')\n"
        "print(json.dumps([[r.status, r.output_tokens, r.estimated, produced]"
        " for r in rows]))\n",
    )
    assert len(usage) == 1, usage
    status, output_tokens, estimated, produced = usage[0]
    # One row, for what was produced: the saved text (the upstream never got to send its
    # usage), which the answer shows too.
    assert status == "client_gone"
    assert estimated is True
    assert output_tokens == produced == answer["output_tokens"] > 0


async def test_sigterm_mid_stream_on_the_api_bills_what_was_streamed(
    start_aurax_server, fake_upstream
):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false")
    credential_id = server.credential_for(fake_upstream.base_url("openai"))
    server.create_user("api-stop@example.com", PASSWORD)
    key = server.manage(
        "create_api_key", "--user", "api-stop@example.com", "--name", "stop"
    ).stdout.strip()
    body = {
        "model": f"{credential_id}:fake-small",
        "stream": True,
        "messages": [{"role": "user", "content": "@tokens=2000 @delay=0.02"}],
    }
    received = ""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            assert response.status == 200
            with contextlib.suppress(aiohttp.ClientPayloadError):
                async for line in response.content:
                    if line.startswith(b"data: {"):
                        chunk = json.loads(line[6:])
                        received += chunk["choices"][0]["delta"].get("content") or ""
                    if len(received) > 200 and server.process.poll() is None:
                        server.process.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(server.process.wait, 30)

    assert returncode == 0, server.log()
    assert await fake_upstream.until(lambda: fake_upstream.requests[-1]["disconnected"])
    usage = server.shell_json(
        "import json\n"
        "from billing.models import UsageEvent\n"
        "rows = UsageEvent.objects.filter(source='api')\n"
        "print(json.dumps([[r.status, r.output_tokens] for r in rows]))\n",
    )
    assert len(usage) == 1, usage
    status, output_tokens = usage[0]
    assert status == "client_gone"
    assert len(received.split()) <= output_tokens < 2000
