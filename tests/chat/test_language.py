"""A chat socket speaks its user's language, learnt when it opens; when the user saves another
(in another tab, which reloads), the open sockets learn it: their page is told
(`language_changed`, and it draws itself again) and their later refusals and errors are said
in it. Across processes the news goes through the user's channel-layer group."""

import uuid

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from chat import generation
from tests.chat.helpers import (
    frames_until,
    of_type,
    socket_for,
    ws_chat_connect,
    ws_frames_until,
)
from tests.conftest import SERVICES_MODE
from tests.factories import PASSWORD
from tests.gateway.conftest import model_for

pytestmark = pytest.mark.usefixtures("_shared_http_client_closed")


@sync_to_async
def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _refusal(socket) -> str:
    await socket.send_json_to({"type": "send", "content": "  "})
    return (await frames_until(socket, of_type("error")))[-1]["message"]


@pytest.mark.django_db(transaction=True)
async def test_open_tabs_follow_a_language_chosen_in_another_tab(alice):
    first, _, _ = await socket_for(alice)
    second, _, _ = await socket_for(alice)
    assert await _refusal(first) == "The message is empty."
    other_tab = await _signed_in(alice)

    # The shell's language picker, in a third tab (it reloads itself).
    response = await sync_to_async(other_tab.post)("/settings/language/", {"language": "es"})
    assert response.status_code == 302

    for socket in (first, second):
        told = (await frames_until(socket, of_type("language_changed")))[-1]
        assert told == {"type": "language_changed", "language": "es"}
        assert await _refusal(socket) == "El mensaje está vacío."

    # The preferences page: the same.
    response = await sync_to_async(other_tab.post)(
        "/settings/preferences/", {"theme": "system", "language": "pt-br", "default_model": ""}
    )
    assert response.status_code == 302
    told = (await frames_until(first, of_type("language_changed")))[-1]
    assert told["language"] == "pt-br"
    assert await _refusal(first) == "A mensagem está vazia."

    # Saving the preferences without changing the language tells nobody.
    await sync_to_async(other_tab.post)(
        "/settings/preferences/", {"theme": "dark", "language": "pt-br", "default_model": ""}
    )
    await first.send_json_to({"type": "ping"})
    assert (await first.receive_json_from(timeout=3)) == {"type": "pong"}
    for socket in (first, second):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_language_an_administrator_sets_reaches_the_open_tabs(alice):
    from tests.factories import UserFactory

    socket, _, _ = await socket_for(alice)
    admin = await sync_to_async(UserFactory)(is_staff=True, is_superuser=True)
    staff = await _signed_in(admin)

    def change(**fields):
        return staff.post(
            f"/admin/accounts/user/{alice.pk}/change/",
            {
                "email": alice.email,
                "theme": "system",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
                "is_active": "on",
                **fields,
            },
        )

    response = await sync_to_async(change)(language="es")
    assert response.status_code == 302
    told = (await frames_until(socket, of_type("language_changed")))[-1]
    assert told == {"type": "language_changed", "language": "es"}
    assert await _refusal(socket) == "El mensaje está vacío."

    # Another change of the user, the language as it was: the tab is not told again.
    response = await sync_to_async(change)(language="es", first_name="Alice")
    assert response.status_code == 302
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=3)) == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_page_drawn_before_the_change_is_told_when_its_socket_reconnects(alice):
    # The language was saved while this page's socket was away (reconnecting): the page says
    # which language it is in, and the new socket tells it at once.
    alice.language = "es"
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(alice, path="/ws/chat/?page_language=en")
    assert await socket.receive_json_from(timeout=3) == {
        "type": "language_changed",
        "language": "es",
    }
    await socket.disconnect()

    # A page already in it is told nothing.
    socket, _, _ = await socket_for(alice, path="/ws/chat/?page_language=es")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=3) == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_back_to_the_browser_s_language_the_socket_takes_its_handshake_s(alice):
    alice.language = "es"
    await alice.asave(update_fields=["language"])
    socket, _, _ = await socket_for(
        alice, extra_headers=[(b"accept-language", b"pt-BR,pt;q=0.9,en;q=0.5")]
    )
    assert await _refusal(socket) == "El mensaje está vacío."
    tab = await _signed_in(alice)

    await sync_to_async(tab.post)(
        "/settings/preferences/", {"theme": "system", "language": "", "default_model": ""}
    )

    told = (await frames_until(socket, of_type("language_changed")))[-1]
    assert told["language"] == "pt-br"
    assert await _refusal(socket) == "A mensagem está vazia."
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_answer_s_error_after_the_change_is_said_in_the_new_language(
    alice, credential, fake_upstream
):
    socket, _, _ = await socket_for(alice)
    tab = await _signed_in(alice)
    await sync_to_async(tab.post)("/settings/language/", {"language": "es"})
    await frames_until(socket, of_type("language_changed"))

    await socket.send_json_to(
        {"type": "send", "content": "@status=429 @retry_after=30", "model": model_for(credential)}
    )
    finished = (await frames_until(socket, of_type("generation_finished")))[-1]

    assert finished["error_message"] == (
        "El proveedor está limitando la frecuencia de las solicitudes. Reintenta en 30 s."
    )
    await socket.disconnect()
    await generation.generations_wait()


# --- Across processes (services mode) -------------------------------------------------------


@pytest.mark.services
@pytest.mark.skipif(not SERVICES_MODE, reason="needs DATABASE_URL and REDIS_URL")
async def test_tabs_on_another_process_follow_the_language_too(start_aurax_server):
    """Two server processes sharing PostgreSQL and the Redis channel layer: the language is
    saved through one, and a tab connected to the other hears of it."""
    first = start_aurax_server(embedded=False)
    second = start_aurax_server(embedded=False, data_dir=first.data_dir)
    session = first.session_for(f"lang-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    async with aiohttp.ClientSession() as http:
        here = await ws_chat_connect(http, first, session)
        there = await ws_chat_connect(http, second, session)
        # Both joined their groups once they answer.
        for ws in (here, there):
            await ws.send_json({"type": "ping"})
            await ws_frames_until(ws, of_type("pong"))

        page = await http.get(f"{first.url}/", headers={"Cookie": f"sessionid={session}"})
        csrf = page.cookies["csrftoken"].value
        response = await http.post(
            f"{first.url}/settings/language/",
            data={"language": "es", "csrfmiddlewaretoken": csrf},
            headers={
                "Cookie": f"sessionid={session}; csrftoken={csrf}",
                "Referer": f"{first.url}/",
            },
            allow_redirects=False,
        )
        assert response.status == 302

        for ws in (here, there):
            told = (await ws_frames_until(ws, of_type("language_changed")))[-1]
            assert told["language"] == "es"
            await ws.send_json({"type": "send", "content": " "})
            refused = (await ws_frames_until(ws, of_type("error")))[-1]
            assert refused["message"] == "El mensaje está vacío."
        await here.close()
        await there.close()
