import asyncio

import httpx
import pytest

from providers.adapters import adapter_for
from providers.http import client_close, get_client, parsed_url
from providers.types import ProviderBadRequest, ProviderUpstreamError, Target

from .conftest import chat, target_for


async def test_one_pooled_client_per_event_loop(http_client_closed_after):
    here = get_client()
    assert get_client() is here
    assert type(here._transport).__name__ == "AiohttpTransport"

    async def elsewhere():
        client = get_client()
        await client_close()
        return client

    other_loop = await asyncio.to_thread(asyncio.run, elsewhere())
    assert other_loop is not here


def test_a_url_is_parsed_once_and_stays_as_given():
    url = "http://127.0.0.1:8900/v1/chat/completions"
    parsed = parsed_url(url)
    assert isinstance(parsed, httpx.URL)
    assert str(parsed) == url and parsed.port == 8900 and parsed.path == "/v1/chat/completions"
    assert parsed_url(url) is parsed
    assert parsed_url("http://127.0.0.1:8900/v1/embeddings").path == "/v1/embeddings"


async def test_redirects_are_never_followed(fake_upstream, http_client_closed_after):
    with pytest.raises(ProviderUpstreamError):
        await adapter_for("openai").complete(
            target_for(fake_upstream, "openai"), chat("@redirect=http://169.254.169.254/")
        )

    assert len(fake_upstream.requests) == 1


async def test_a_user_set_private_url_is_refused_again_at_call_time(
    fake_upstream, http_client_closed_after
):
    target = Target(
        kind="openai",
        base_url=fake_upstream.base_url("openai"),
        api_key="k",
        allow_private_network=False,
    )

    with pytest.raises(ProviderBadRequest):
        await adapter_for("openai").complete(target, chat("hi"))

    assert fake_upstream.requests == []


async def test_a_cookie_a_provider_sets_is_never_sent_back(http_client_closed_after):
    import http.server
    import threading

    seen = []

    class SetsCookies(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "session=tenant-a; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SetsCookies)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/models"
        client = get_client()
        for _ in range(2):
            response = await client.get(url)
            assert response.headers["set-cookie"].startswith("session=")
    finally:
        server.shutdown()

    assert seen == [None, None]
    assert len(client.cookies) == 0


async def test_more_streams_than_the_old_cap_are_open_at_once(http_client_closed_after):
    """A streaming answer holds its upstream connection to its end, so the pool's size is how
    many answers a process streams at once. An upstream that answers nobody until 240
    requests are in flight gets them all (with the former cap, 200, it saw 200 and the rest
    waited for those to end)."""
    from aiohttp import web

    wanted, in_flight, peak = 240, 0, 0
    all_in = asyncio.Event()

    async def hold(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight >= wanted:
            all_in.set()
        try:
            await asyncio.wait_for(all_in.wait(), 10)
        except TimeoutError:
            pass
        in_flight -= 1
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_get("/v1/models", hold)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        client = get_client()
        url = parsed_url(f"http://127.0.0.1:{port}/v1/models")
        responses = await asyncio.gather(*(client.get(url) for _ in range(wanted)))
    finally:
        await runner.cleanup()

    assert [r.status_code for r in responses] == [200] * wanted
    assert peak == wanted
