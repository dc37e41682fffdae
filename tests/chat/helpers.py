import asyncio
import json

import aiohttp
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from aurax.asgi import application


@sync_to_async
def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def socket_for(
    user=None, *, origin: str = "http://testserver", extra_headers=(), path: str = "/ws/chat/"
):
    headers = [(b"origin", origin.encode()), (b"host", b"testserver"), *extra_headers]
    if user is not None:
        headers.append((b"cookie", (await session_cookie(user)).encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def frames_until(communicator, predicate, *, timeout: float = 10.0) -> list[dict]:
    """Every frame received up to and including the first that satisfies `predicate`."""
    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame; got {[f['type'] for f in frames]}")
        frame = await communicator.receive_json_from(timeout=remaining)
        frames.append(frame)
        if predicate(frame):
            return frames


async def ws_chat_connect(http, server, session: str):
    """A chat socket on a live server (`AuraxServer`) for the session `session`, through the
    aiohttp client session `http`."""
    return await http.ws_connect(
        server.ws_url + "/ws/chat/",
        headers={"Cookie": f"sessionid={session}", "Origin": "http://127.0.0.1"},
    )


async def ws_frames_until(ws, predicate, *, timeout: float = 10.0) -> list[dict]:
    """`frames_until` for an aiohttp socket on a live server: every frame up to and including
    the first that satisfies `predicate`; fails if the socket ends first."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"the socket ended ({message.type}) after {frames}")
            frame = json.loads(message.data)
            frames.append(frame)
            if predicate(frame):
                return frames


def of_type(kind):
    return lambda frame: frame["type"] == kind


def streamed_text(frames) -> str:
    text = ""
    for f in frames:
        if f["type"] == "delta":
            assert f["offset"] == len(text), "deltas arrive in order without gaps"
            text += f["text"]
    return text


def conversation_with(user, **fields):
    """A new conversation of the user's personal workspace, its fields then set as given
    (settings the service would refuse included: a stored value from before)."""
    from chat import services
    from chat.models import Conversation
    from workspaces.selectors import personal_workspace_get

    conversation = services.conversation_create(
        user=user, workspace=personal_workspace_get(user=user)
    )
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    conversation.refresh_from_db()
    return conversation
