"""A server process asked to stop (SIGTERM) while a comparison whose page went away still runs:
its calls end and are billed, and the process does not wait for the page to come back."""

import asyncio
import signal
import time
import uuid

import aiohttp

from tests.chat.helpers import ws_frames_until
from tests.factories import PASSWORD


async def test_sigterm_ends_a_comparison_left_by_its_page_and_bills_it(
    start_aurax_server, fake_upstream
):
    server = start_aurax_server(PROVIDER_TRUST_ENV="false")
    credential_id = server.credential_for(fake_upstream.base_url("openai"))
    session = server.session_for(f"cmp-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    workspace = server.shell_json(
        "import json\n"
        "from workspaces.models import Membership\n"
        "m = Membership.objects.get(user__email__startswith='cmp-')\n"
        "print(json.dumps(m.workspace.slug))\n"
    )
    fake_upstream.reset()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            server.ws_url + "/ws/compare/",
            headers={"Cookie": f"sessionid={session}", "Origin": "http://127.0.0.1"},
        )
        model = f"{credential_id}:fake-small"
        await ws.send_json(
            {
                "type": "compare",
                "workspace": workspace,
                "models": [model, model],
                "content": "@tokens=2000 @delay=0.02",
            }
        )
        await ws_frames_until(ws, lambda f: f["type"] == "delta")
        await ws.close()  # the page went away: the answers go on

    def calls():
        return [r for r in fake_upstream.posted() if r["path"].endswith("/chat/completions")]

    await asyncio.sleep(0.5)
    assert len(calls()) == 2 and not any(r["disconnected"] for r in calls())
    asked = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(server.process.wait, 30)
    assert returncode == 0, server.log()
    assert time.monotonic() - asked < 20  # not the minute a page has to come back
    assert await fake_upstream.until(lambda: all(r["disconnected"] for r in calls()))
    statuses = server.shell_json(
        "import json\n"
        "from billing.models import UsageEvent\n"
        "print(json.dumps([[e.status, e.output_tokens] for e in"
        " UsageEvent.objects.filter(source='compare')]))\n"
    )
    assert [status for status, _ in statuses] == ["client_gone", "client_gone"], statuses
    assert all(0 < tokens < 2000 for _, tokens in statuses)
