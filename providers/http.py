"""The one seam for outbound HTTP to model providers.

`get_client()` returns a pooled `httpx.AsyncClient` running on the aiohttp transport of
`httpx-aiohttp` (several times the throughput of httpx's own transport under load). An aiohttp
session is bound to the event loop that created it, and Daphne, Celery and the tests each run
their own loops, so there is one client per running loop.

Timeouts come from settings on every request (`request_timeout()`), so a settings change (or a
test's override) applies without rebuilding the client. Redirects are never followed: a
provider answering with a redirect is an error, and following one could reach an address the
SSRF check refused.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import types
import weakref
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from django.conf import settings
from httpx_aiohttp import HttpxAiohttpClient
from httpx_aiohttp.transport import AiohttpResponseStream, map_aiohttp_exceptions

from aurax.eager import eager_task

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


# --- A request's body leaves in the loop turn that sends the request -----------------------
# aiohttp writes a request's body from a task of its own, created with `eager_start` on Python
# 3.12 and later: the task runs at once, and a body that fits the socket's buffer is written
# before the request goes on to wait for the response. Python 3.11 has no eager tasks, so
# there the body (and the headers, which aiohttp holds back to send with it) left one loop
# turn later; under load a turn of the loop is milliseconds of other answers' tokens, on the
# way to every answer's first token. On 3.11 that one task is started here as 3.12 starts it.


def _aiohttp_body_writes_eager() -> None:
    if sys.version_info >= (3, 12):
        return  # aiohttp starts that task eagerly itself
    from aiohttp import client_reqrep

    # `client_reqrep` calls `asyncio.create_task` for the body's task only (aiohttp 3.14, as
    # pinned in pyproject.toml).
    client_reqrep.asyncio = types.SimpleNamespace(**{**vars(asyncio), "create_task": eager_task})


_aiohttp_body_writes_eager()


class _NoCookies(httpx.Cookies):
    """Provider APIs authenticate every request by key; a cookie that one provider response
    sets must never ride along on another tenant's later request to the same host. (Keeping
    them also cost httpx an http.cookiejar pass over every response.)"""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


def request_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.PROVIDER_CONNECT_TIMEOUT,
        read=settings.PROVIDER_READ_TIMEOUT,
        write=settings.PROVIDER_CONNECT_TIMEOUT,
        pool=settings.PROVIDER_CONNECT_TIMEOUT,
    )


def get_client() -> httpx.AsyncClient:
    """The shared client of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = HttpxAiohttpClient(
            timeout=request_timeout(),
            limits=httpx.Limits(
                max_connections=settings.PROVIDER_MAX_CONNECTIONS,
                max_keepalive_connections=settings.PROVIDER_MAX_CONNECTIONS,
                keepalive_expiry=30,
            ),
            follow_redirects=False,
            trust_env=settings.PROVIDER_TRUST_ENV,
        )
        client._cookies = _NoCookies()  # the `cookies` setter would copy it into a plain jar
        _clients[loop] = client
    return client


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, parsed once per distinct URL: httpx parses a string URL on every
    request, an `httpx.URL` it takes as it is (building a request: ~32 µs → ~19 µs here).
    URLs are immutable; each provider base URL gives a few endpoints."""
    return httpx.URL(url)


def _aiohttp_content(response: httpx.Response) -> aiohttp.StreamReader | None:
    """The aiohttp body stream under a response from the aiohttp transport, else None."""
    stream = getattr(response.stream, "_stream", None)  # inside httpx's BoundAsyncStream
    if not isinstance(stream, AiohttpResponseStream):
        return None
    return stream._aiohttp_response.content


def body_reader(response: httpx.Response) -> Callable[[], Awaitable[bytes]]:
    """`await read()`: the bytes of a streamed body received since the previous call (waiting
    for the first of them), b"" at its end. Errors are httpx's, as from `aiter_bytes`.

    A body from the aiohttp transport without content coding is read straight from aiohttp's
    buffer: `readany` returns everything received so far in one piece, where `aiter_bytes`
    resumes four nested generators (httpx's decoding, raw and client layers, the transport's
    chunk iterator) for every chunk; on a stream of one token per TCP segment those resumptions
    were a tenth of the event loop's time. Anything else (gzip, another transport) goes
    through `aiter_bytes`."""
    content = _aiohttp_content(response)
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if content is None or coding not in ("", "identity"):
        chunks = response.aiter_bytes()

        async def read_decoded() -> bytes:
            async for chunk in chunks:
                if chunk:
                    return chunk
            return b""

        return read_decoded

    async def read() -> bytes:
        try:
            return await content.readany()
        except Exception:
            with map_aiohttp_exceptions():
                raise

    return read


# After a stream's last event the rest of its body (the closing chunk) normally follows at
# once; a provider slower than this, or sending more than BODY_END_LIMIT, loses the connection.
BODY_END_WAIT = 0.25  # seconds
BODY_END_LIMIT = 65536  # bytes


async def body_end(response: httpx.Response) -> None:
    """After a stream's last event (OpenAI's `[DONE]`, Anthropic's `message_stop`…): read what
    is left of the body, so that aiohttp hands the connection back to the pool instead of
    closing it, and the next call to the same provider skips a TCP and TLS handshake. aiohttp
    keeps a connection only once the body's end has been parsed, and an adapter returns at the
    last event, before the chunked body's closing `0\r\n\r\n` is read.

    Best effort: past BODY_END_WAIT or BODY_END_LIMIT, or on an error, it returns and the
    connection is closed as before. Other transports pool by their own rules."""
    content = _aiohttp_content(response)
    if content is None or content.at_eof():
        return
    left = BODY_END_LIMIT
    try:
        async with asyncio.timeout(BODY_END_WAIT):
            while left > 0 and not content.at_eof():
                chunk = await content.readany()
                if not chunk:
                    return
                left -= len(chunk)
    except (TimeoutError, aiohttp.ClientError):
        pass


async def client_close() -> None:
    """Close the running loop's client (tests and shutdown hooks call this before the loop
    ends, so aiohttp does not warn about an unclosed session)."""
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()


def run_blocking(coroutine_function, /, *args, **kwargs):
    """Run provider I/O from sync code (views, Celery tasks, commands) on a private event
    loop, closing that loop's client afterwards. Sync callers never share a loop with the
    ASGI server's, so the server's pooled client is never touched (nor closed) from here."""

    async def run():
        try:
            return await coroutine_function(*args, **kwargs)
        finally:
            await client_close()

    return asyncio.run(run())
