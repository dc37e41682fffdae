import pytest
from asgiref.sync import sync_to_async

from chat import generation
from tests.chat.helpers import frames_until, of_type, socket_for
from tests.factories import UserFactory
from tests.gateway.conftest import model_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]


async def test_an_anonymous_socket_is_closed_with_4401(transactional_db):
    socket, connected, _ = await socket_for(None)
    assert connected  # accepted, then closed: a refused handshake would reach a browser as 1006
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_a_foreign_origin_is_refused(transactional_db):
    user = await sync_to_async(UserFactory)()
    socket, connected, _ = await socket_for(user, origin="http://evil.example")
    assert not connected


async def test_a_user_can_neither_read_nor_stream_nor_stop_another_users_conversation(
    transactional_db, credential, fake_upstream
):
    alice, mallory = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    owner, _, _ = await socket_for(alice)
    intruder, _, _ = await socket_for(mallory)
    await owner.send_json_to(
        {
            "type": "send",
            "content": "@tokens=200 @delay=0.01 secret plan",
            "model": model_for(credential),
        }
    )
    started = (await frames_until(owner, of_type("generation_started")))[-1]
    conversation_id, answer_id = started["conversation_id"], started["message_id"]

    for frame in (
        {"type": "subscribe", "conversation_id": conversation_id},
        {"type": "sync", "conversation_id": conversation_id},
        {"type": "stop", "conversation_id": conversation_id},
        {"type": "send", "conversation_id": conversation_id, "content": "hi"},
        {"type": "regenerate", "message_id": answer_id},
        {"type": "edit", "message_id": started["parent_id"], "content": "mine now"},
    ):
        await intruder.send_json_to(frame)
        reply = await intruder.receive_json_from(timeout=3)
        assert reply["type"] == "error" and reply["code"] == "not_found", frame
        assert "secret" not in str(reply)

    # Nothing of the stream reaches the intruder, and the stop did not stop it.
    finished = (await frames_until(owner, of_type("generation_finished")))[-1]
    assert finished["status"] == "complete"
    assert await intruder.receive_nothing(timeout=0.2)
    await owner.disconnect()
    await intruder.disconnect()
    await generation.generations_wait()


@pytest.mark.parametrize("conversation_id", [2**63, -(2**63) - 1, 10**30, "12abc", None])
async def test_an_id_that_cannot_be_a_conversation_is_not_found_and_the_socket_goes_on(
    transactional_db, conversation_id
):
    user = await sync_to_async(UserFactory)()
    socket, _, _ = await socket_for(user)
    for kind in ("subscribe", "stop"):
        await socket.send_json_to({"type": kind, "conversation_id": conversation_id})
        reply = await socket.receive_json_from(timeout=3)
        assert reply["type"] == "error" and reply["code"] == "not_found", kind
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=3))["type"] == "pong"
    await socket.disconnect()


async def _socket_with_client(user):
    """A chat socket and a web client of one browser session."""
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.test import Client

    from aurax.asgi import application

    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    socket = WebsocketCommunicator(
        application,
        "/ws/chat/",
        headers=[
            (b"origin", b"http://testserver"),
            (b"host", b"testserver"),
            (b"cookie", cookie.encode()),
        ],
    )
    connected, _ = await socket.connect(timeout=5)
    assert connected
    return socket, client


async def test_signing_out_closes_that_sessions_open_chat_tabs(transactional_db):
    from django.urls import reverse

    user = await sync_to_async(UserFactory)()
    tab, browser = await _socket_with_client(user)
    other_device, _, _ = await socket_for(user)

    await sync_to_async(browser.post)(reverse("account_logout"))

    closed = await tab.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4401}
    # The same account signed in elsewhere keeps its socket.
    await other_device.send_json_to({"type": "ping"})
    assert (await other_device.receive_json_from(timeout=3))["type"] == "pong"
    await other_device.disconnect()


async def test_deactivating_or_deleting_an_account_closes_its_open_chat_tabs(transactional_db):
    deactivated, deleted = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    first, _, _ = await socket_for(deactivated)
    second, _, _ = await socket_for(deleted)

    deactivated.is_active = False
    await sync_to_async(deactivated.save)()
    await sync_to_async(deleted.delete)()

    for socket in (first, second):
        assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


async def test_a_browser_whose_session_ended_is_told_4401_by_the_server(start_aurax_server):
    # Through daphne: the code reaches the client (the page then goes to sign in), where a
    # refused handshake would have been a 403 and a close code of 1006 (reconnect for ever).
    import aiohttp

    server = start_aurax_server()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            server.ws_url + "/ws/chat/", headers={"Origin": "http://127.0.0.1"}
        )
        message = await ws.receive(timeout=10)
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4401
