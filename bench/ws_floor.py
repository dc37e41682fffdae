"""The floor under bench/ws_load.py: the same stack relaying the same upstream with none of
AURAX's own work, to tell what the stack costs from what AURAX adds.

    bench/ws_floor.sh                    fake upstream on :8910, this app on :8013
    .venv/bin/python bench/ws_load.py run -n 200 --port 8013 --data /tmp/aurax-wsfloor

What it keeps from the chat path: Daphne started by aurax.daphne_main (uvloop and the same
patches); a Channels consumer per socket, reading it as the chat's does (chat.socket_loop); a
generation task per answer reading the upstream's SSE stream with aiohttp; text coalesced into
one frame per 50 ms (the chat's interval when busy); every frame going through the channel layer
to the socket's group, since a second tab must see it (AURAX's own layers: chat.layers in
memory, chat.redis_layer with REDIS_URL).

What it leaves out: authentication, sessions, the database (no message saved, no access check,
no progress, no usage or cost), the pipeline (routing, rate limits, budgets, retries), httpx,
token counting and stop.

FLOOR_THREAD_MS=4 puts back the shape of a chat send's database work without the database:
that many milliseconds of Python on one thread (the embedded mode's one database thread) before
the upstream call, sharing the GIL with the event loop as the real work does. FLOOR_LOOP_MS=4
runs the same Python on the event loop itself instead, blocking it meanwhile: what the same work
costs the streams without a thread to hand over to and back.

It speaks just enough of docs/websocket.md for ws_load.py: `send` in;
`delta` and `generation_finished` out.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django.conf import settings  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "")
if not settings.configured:  # run as a script, this module is imported twice
    settings.configure(
        INSTALLED_APPS=[],
        DEBUG=False,
        CHANNEL_LAYERS={
            "default": (
                {
                    "BACKEND": "chat.redis_layer.PipelinedRedisPubSubChannelLayer",
                    "CONFIG": {"hosts": [REDIS_URL]},
                }
                if REDIS_URL
                else {
                    "BACKEND": "chat.layers.FastInMemoryChannelLayer",
                    "CONFIG": {"capacity": 1000, "expiry": 60},
                }
            )
        },
    )

import django  # noqa: E402

django.setup()

import aiohttp  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.socket_loop import LeanLoopMixin  # noqa: E402

UPSTREAM = os.environ.get("FLOOR_UPSTREAM", "http://127.0.0.1:8910/v1") + "/chat/completions"
FRAME_INTERVAL = 0.05
THREAD_WORK = float(os.environ.get("FLOOR_THREAD_MS", "0")) / 1000  # seconds of CPU per send
LOOP_WORK = float(os.environ.get("FLOOR_LOOP_MS", "0")) / 1000  # the same, inline on the loop
_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-db")
_tasks: set[asyncio.Task] = set()
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def http() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    if loop not in _sessions:
        _sessions[loop] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    return _sessions[loop]


def cpu_work(seconds: float) -> None:
    """`seconds` of this thread's CPU in Python bytecode."""
    end = time.thread_time() + seconds
    total = 0
    while time.thread_time() < end:
        for i in range(100):
            total += i


async def generate(layer, group: str, content: str) -> None:
    loop = asyncio.get_running_loop()
    nowait = getattr(layer, "group_send_nowait", None)
    pending: list[str] = []
    sent = 0
    last = -FRAME_INTERVAL
    timer: asyncio.TimerHandle | None = None
    sending: list[asyncio.Task] = []

    def flush() -> None:
        nonlocal sent, last, timer
        timer = None
        text = "".join(pending)
        pending.clear()
        frame = json.dumps({"type": "delta", "offset": sent, "text": text})
        event = {"type": "chat.delta", "frame": frame}
        sent, last = sent + len(text), loop.time()
        if nowait is not None:
            nowait(group, event, repairable=True)  # as chat.generation sends its deltas
        else:
            sending.append(loop.create_task(layer.group_send(group, event)))

    if THREAD_WORK:
        await loop.run_in_executor(_thread, cpu_work, THREAD_WORK)
    if LOOP_WORK:
        cpu_work(LOOP_WORK)
    body = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": content}]}
    headers = {"Authorization": "Bearer sk-mock-upstream"}
    status = "complete"
    for attempt in range(3):  # an idle keep-alive connection the upstream closed meanwhile
        try:
            async with http().post(UPSTREAM, json=body, headers=headers) as response:
                buffer = b""
                async for chunk in response.content.iter_any():
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for line in lines:
                        if not line.startswith(b"data: {"):
                            continue
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        text = (choices[0].get("delta") or {}).get("content")
                        if text:
                            pending.append(text)
                            if timer is None:
                                due = last + FRAME_INTERVAL
                                if due <= loop.time():
                                    flush()
                                else:
                                    timer = loop.call_at(due, flush)
            break
        except aiohttp.ClientOSError:
            if attempt == 2 or sent:
                status = "error"
                break
    if timer is not None:
        timer.cancel()
    if pending:
        flush()
    if sending:
        await asyncio.gather(*sending)
    await layer.group_send(group, {"type": "chat.finished", "status": status})


class FloorConsumer(LeanLoopMixin, AsyncWebsocketConsumer):
    async def connect(self):
        self.group = f"floor.{self.channel_name.rsplit('!', 1)[-1]}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data)
        if frame.get("type") == "send":
            task = asyncio.get_running_loop().create_task(
                generate(self.channel_layer, self.group, frame.get("content", ""))
            )
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

    async def chat_delta(self, event):
        await self.send(text_data=event["frame"])

    async def chat_finished(self, event):
        await self.send(
            text_data=json.dumps({"type": "generation_finished", "status": event["status"]})
        )


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/chat/", FloorConsumer.as_asgi())])}
)


if __name__ == "__main__":
    # python bench/ws_floor.py PORT: serve this app the way bin/serve serves AURAX's.
    from aurax import daphne_main

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.argv = ["daphne", "-b", "127.0.0.1", "-p", sys.argv[1], "-v", "0", "ws_floor:application"]
    daphne_main.main()
