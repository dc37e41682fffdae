"""Serves /v1 straight from ASGI. Database work runs on the pipeline's pool
(`aurax.db_threads`), so a request needs no ThreadSensitiveContext of its own (Django's
handler opens one per request, and with it a thread and a connection for whatever calls
`sync_to_async`); the one handler that still goes through `database_sync_to_async` opens it
itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import parse_qsl

from aurax.logging import request_id_for, request_id_var
from gateway.errors import GatewayError, service_unavailable, store_unreachable

from .errors import ApiError
from .handlers import MAX_BODY_BYTES, ApiRequest, ApiResponse, authenticate, route_match

logger = logging.getLogger("aurax.request")


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "request_too_large", f"The request body is larger than {limit} bytes."
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _query(query_string: bytes) -> dict[str, str]:
    """The query's parameters, the last of each name."""
    return dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


async def _send_response(response: ApiResponse, send, receive, request_id: str) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"x-request-id", request_id.encode()),
        *[(k.encode(), v.encode()) for k, v in response.headers.items()],
    ]
    if isinstance(response.body, bytes):
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})

    async def pump():
        async for chunk in response.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def watch_disconnect():
        while (await receive())["type"] != "http.disconnect":
            pass

    # A client that goes away mid-stream cancels the pump, which closes the upstream call.
    streaming = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(watch_disconnect())
    try:
        await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (streaming, watcher):
            if not task.done():
                task.cancel()
        for task in (streaming, watcher):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if streaming.done() and not streaming.cancelled() and streaming.exception() is not None:
            exc = streaming.exception()
            if not isinstance(exc, OSError):
                raise exc
        with contextlib.suppress(Exception):
            await response.body.aclose()


async def application(scope, receive, send) -> None:
    # ASGI servers give header names lower-cased.
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    request_id = request_id_for(headers.get("x-request-id", ""))
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    path = scope["path"].rstrip("/") or "/"
    route, params = route_match(path, scope["method"])
    flavour = (
        route.flavour if route else "anthropic" if path.startswith("/v1/messages") else "openai"
    )
    status = 500
    try:
        try:
            if route is None:
                raise ApiError(404, "not_found", f"Unknown endpoint {path}.")
            if scope["method"] not in route.methods:
                allowed = ", ".join(route.methods)
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{scope['method']} is not allowed on {path}: use {allowed}.",
                    headers={"allow": allowed},
                )
            limit = route.max_body() if route.max_body else MAX_BODY_BYTES
            if limit > MAX_BODY_BYTES:
                # A large upload is read into memory only for a caller with a valid key.
                await authenticate(headers)
            declared = int(headers.get("content-length") or 0)
            if declared > limit:
                raise ApiError(
                    413, "request_too_large", f"The request body is larger than {limit} bytes."
                )
            body = await _read_body(receive, limit)
            request = ApiRequest(
                scope["method"],
                path,
                headers,
                body,
                request_id,
                query=_query(scope.get("query_string", b"")),
                params=params,
            )
            response = await route.handler(request)
        except ApiError as exc:
            response = ApiResponse.error(exc, flavour)
        except GatewayError as exc:
            response = ApiResponse.error(ApiError.from_gateway(exc), flavour)
        status = response.status
        await _send_response(response, send, receive, request_id)
    except ConnectionResetError:
        status = 499
    except Exception as exc:
        logger.exception("unhandled error in %s", path)
        if store_unreachable(exc):  # 503 with Retry-After: the SDKs wait and retry
            error = ApiError.from_gateway(service_unavailable())
        else:
            error = ApiError(500, "internal", "Internal error.")
        status = error.status
        with contextlib.suppress(Exception):
            await _send_response(ApiResponse.error(error, flavour), send, receive, request_id)
    finally:
        logger.info(
            "%s %s %s",
            scope["method"],
            path,
            status,
            extra={"status": status, "ms": round((time.perf_counter() - started) * 1000, 1)},
        )
        request_id_var.reset(token)
