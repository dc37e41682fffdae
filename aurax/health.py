"""Liveness and readiness probes. Each readiness check has a short timeout so a dead
dependency answers 503 quickly instead of hanging the probe."""

import asyncio
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

CHECK_TIMEOUT = 3.0


def _check_database() -> None:
    # Runs in a pool thread: close its connection so the next probe connects afresh.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def _check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


def _check_broker() -> None:
    from aurax.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)


async def _check_channel_layer() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned another message")


async def _run(name, check):
    try:
        if asyncio.iscoroutinefunction(check):
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        else:
            await asyncio.wait_for(sync_to_async(check, thread_sensitive=False)(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure means "not ready"; the reason goes in the body
        return name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return name, None


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
async def readyz(request):
    checks = {
        "database": _check_database,
        "cache": _check_cache,
        "channel_layer": _check_channel_layer,
        "broker": _check_broker,
    }
    results = dict(await asyncio.gather(*(_run(n, c) for n, c in checks.items())))
    failed = {name: error for name, error in results.items() if error}
    body = {
        "status": "ok" if not failed else "unavailable",
        "checks": {name: ("ok" if not err else "failed") for name, err in results.items()},
        "failed": failed,
    }
    return JsonResponse(body, status=503 if failed else 200)
