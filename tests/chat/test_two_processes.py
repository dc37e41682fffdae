"""Services mode: two server processes sharing PostgreSQL and the Redis channel layer."""

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import SERVICES_MODE
from tests.factories import PASSWORD

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL"),
]


def _session_for(server, email) -> str:
    server.create_user(email, PASSWORD)
    return (
        server.shell(
            "from accounts.models import User\n"
            "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"u = User.objects.get(email={email!r})\n"
            "s = SessionStore()\n"
            "s[SESSION_KEY] = str(u.pk)\n"
            "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
            "s.create()\n"
            "print(s.session_key)\n"
        )
        .strip()
        .splitlines()[-1]
    )


@pytest.fixture
def two_servers(start_aurax_server, fake_upstream):
    first = start_aurax_server(embedded=False, PROVIDER_TRUST_ENV="false")
    # Same data dir: the processes of one deployment share SECRET_KEY and encryption keys.
    second = start_aurax_server(embedded=False, data_dir=first.data_dir, PROVIDER_TRUST_ENV="false")
    credential_id = (
        first.shell(
            "from providers.services import credential_create\n"
            "c = credential_create(actor=None, scope='global', kind='openai', name='Fake', "
            f"api_key='sk-test-key-1234', base_url={fake_upstream.base_url('openai')!r}, "
            "allow_private_network=True)\n"
            "print(c.id)\n"
        )
        .strip()
        .splitlines()[-1]
    )
    return first, second, credential_id


async def _frames_until(ws, predicate, timeout=10.0):
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads((await ws.receive()).data)
            frames.append(frame)
            if predicate(frame):
                return frames


async def test_a_stream_started_on_one_process_is_live_on_the_other_and_stops_from_either(
    two_servers, fake_upstream
):
    first, second, credential_id = two_servers
    import uuid

    session = _session_for(first, f"two-{uuid.uuid4().hex[:8]}@example.com")
    headers = {"Cookie": f"sessionid={session}", "Origin": "http://127.0.0.1"}
    async with aiohttp.ClientSession() as http:
        ws_a = await http.ws_connect(first.ws_url + "/ws/chat/", headers=headers)
        ws_b = await http.ws_connect(second.ws_url + "/ws/chat/", headers=headers)
        await ws_a.send_json(
            {
                "type": "send",
                "content": "@tokens=400 @delay=0.02",
                "model": f"{credential_id}:fake-small",
            }
        )
        started = (await _frames_until(ws_a, lambda f: f["type"] == "generation_started"))[-1]
        conversation_id = started["conversation_id"]

        await ws_b.send_json({"type": "subscribe", "conversation_id": conversation_id})
        frames = await _frames_until(ws_b, lambda f: f["type"] == "snapshot")
        snapshot = frames[-1]["text"]
        # Live deltas from the other process continue the snapshot.
        frames = await _frames_until(
            ws_b,
            lambda f: f["type"] == "delta" and f["offset"] + len(f["text"]) > len(snapshot) + 20,
        )

        # Stop from the tab on the process that does NOT run the generation.
        await ws_b.send_json({"type": "stop", "conversation_id": conversation_id})
        for ws in (ws_a, ws_b):
            finished = (await _frames_until(ws, lambda f: f["type"] == "generation_finished", 5))[
                -1
            ]
            assert finished["status"] == "stopped"
        assert fake_upstream.wait_for(lambda: fake_upstream.requests[-1]["disconnected"])

        # And the other way round: started through B, stopped from A.
        await ws_b.send_json(
            {
                "type": "send",
                "conversation_id": conversation_id,
                "content": "@tokens=400 @delay=0.02",
            }
        )
        await _frames_until(ws_a, lambda f: f["type"] == "delta")
        await ws_a.send_json({"type": "stop", "conversation_id": conversation_id})
        finished = (await _frames_until(ws_b, lambda f: f["type"] == "generation_finished", 5))[-1]
        assert finished["status"] == "stopped"
        await ws_a.close()
        await ws_b.close()
