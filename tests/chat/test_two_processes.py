"""Services mode: two server processes sharing PostgreSQL and the Redis channel layer."""

import aiohttp
import pytest

from tests.chat.helpers import ws_chat_connect, ws_frames_until
from tests.conftest import SERVICES_MODE
from tests.factories import PASSWORD

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL"),
]


@pytest.fixture
def two_servers(start_aurax_server, fake_upstream):
    first = start_aurax_server(embedded=False, PROVIDER_TRUST_ENV="false")
    # Same data dir: the processes of one deployment share SECRET_KEY and encryption keys.
    second = start_aurax_server(embedded=False, data_dir=first.data_dir, PROVIDER_TRUST_ENV="false")
    credential_id = first.credential_for(fake_upstream.base_url("openai"))
    return first, second, credential_id


async def test_a_stream_started_on_one_process_is_live_on_the_other_and_stops_from_either(
    two_servers, fake_upstream
):
    first, second, credential_id = two_servers
    import uuid

    session = first.session_for(f"two-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    async with aiohttp.ClientSession() as http:
        ws_a = await ws_chat_connect(http, first, session)
        ws_b = await ws_chat_connect(http, second, session)
        await ws_a.send_json(
            {
                "type": "send",
                "content": "@tokens=400 @delay=0.02",
                "model": f"{credential_id}:fake-small",
            }
        )
        started = (await ws_frames_until(ws_a, lambda f: f["type"] == "generation_started"))[-1]
        conversation_id = started["conversation_id"]

        await ws_b.send_json({"type": "subscribe", "conversation_id": conversation_id})
        frames = await ws_frames_until(ws_b, lambda f: f["type"] == "snapshot")
        snapshot = frames[-1]["text"]
        # Live deltas from the other process continue the snapshot.
        frames = await ws_frames_until(
            ws_b,
            lambda f: f["type"] == "delta" and f["offset"] + len(f["text"]) > len(snapshot) + 20,
        )

        # Stop from the tab on the process that does NOT run the generation.
        await ws_b.send_json({"type": "stop", "conversation_id": conversation_id})
        for ws in (ws_a, ws_b):
            finished = (
                await ws_frames_until(ws, lambda f: f["type"] == "generation_finished", timeout=5)
            )[-1]
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
        await ws_frames_until(ws_a, lambda f: f["type"] == "delta")
        await ws_a.send_json({"type": "stop", "conversation_id": conversation_id})
        finished = (
            await ws_frames_until(ws_b, lambda f: f["type"] == "generation_finished", timeout=5)
        )[-1]
        assert finished["status"] == "stopped"
        await ws_a.close()
        await ws_b.close()
