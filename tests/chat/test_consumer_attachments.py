"""Files sent with a chat message reach the model in its provider's own wire format, over the
socket, against the fake upstream over real HTTP."""

import base64

import pytest
from asgiref.sync import sync_to_async

from chat import generation, services
from chat.models import Conversation, Message
from tests.chat.files import jpeg, pdf, png, pptx, xlsx
from tests.chat.helpers import frames_until, of_type, socket_for
from tests.factories import UserFactory
from tests.gateway.conftest import model_for
from workspaces.selectors import personal_workspace_get

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_shared_http_client_closed"),
]

IMAGE = png(5, 5, (10, 120, 200))
IMAGE_URL = "data:image/png;base64," + base64.b64encode(IMAGE).decode()


@sync_to_async
def _upload(user, name: str, data: bytes):
    return services.attachment_create(
        workspace=personal_workspace_get(user=user), user=user, name=name, data=data
    ).pk


async def _ask(socket, credential, content: str, attachments: list[int]):
    await socket.send_json_to(
        {
            "type": "send",
            "content": content,
            "model": model_for(credential),
            "attachments": attachments,
            "request_id": 1,
        }
    )
    return await frames_until(socket, of_type("generation_finished"))


async def test_images_and_documents_reach_an_openai_compatible_model(
    alice, credential, fake_upstream
):
    image = await _upload(alice, "chart.png", IMAGE)
    report = await _upload(alice, "report.pdf", pdf("Revenue rose 12 percent"))
    socket, _connected, _ = await socket_for(alice)
    frames = await _ask(socket, credential, '@reply="A chart."', [image, report])
    assert frames[-1]["status"] == "complete"
    (posted,) = fake_upstream.posted()
    question = posted["json"]["messages"][-1]
    assert question["role"] == "user"
    text, picture = question["content"]
    assert text["type"] == "text"
    assert text["text"] == (
        '@reply="A chart."\n\n<file name="report.pdf">\nRevenue rose 12 percent\n</file>'
    )
    assert picture == {"type": "image_url", "image_url": {"url": IMAGE_URL}}
    await socket.disconnect()
    await generation.generations_wait()


async def test_a_workbook_and_a_presentation_reach_the_model_as_text(
    alice, credential, fake_upstream
):
    sheet = await _upload(alice, "owls.xlsx", xlsx({"Owls": [["Owl", "Prey"], ["Barn", "Mice"]]}))
    slides = await _upload(alice, "talk.pptx", pptx({"title": "Owls", "bullets": ["Silent"]}))
    socket, _connected, _ = await socket_for(alice)
    frames = await _ask(socket, credential, '@reply="Read."', [sheet, slides])
    assert frames[-1]["status"] == "complete"
    (posted,) = fake_upstream.posted()
    assert posted["json"]["messages"][-1]["content"] == (
        '@reply="Read."\n\n'
        '<file name="owls.xlsx">\n## Sheet: Owls\nOwl | Prey\nBarn | Mice\n</file>\n\n'
        '<file name="talk.pptx">\n## Slide 1\nOwls\nSilent\n</file>'
    )
    await socket.disconnect()
    await generation.generations_wait()


async def test_the_files_of_earlier_messages_go_with_every_later_answer(
    alice, credential, fake_upstream
):
    image = await _upload(alice, "owl.png", IMAGE)
    socket, _connected, _ = await socket_for(alice)
    await _ask(socket, credential, '@reply="An owl."', [image])
    conversation_id = (await Conversation.objects.aget(user=alice)).pk
    await socket.send_json_to(
        {"type": "send", "conversation_id": conversation_id, "content": "@reply=Brown."}
    )
    await frames_until(socket, of_type("generation_finished"))
    first_question = fake_upstream.posted()[-1]["json"]["messages"][0]
    assert first_question["content"][1]["image_url"]["url"] == IMAGE_URL
    await socket.disconnect()
    await generation.generations_wait()


async def test_an_image_reaches_an_anthropic_model_as_a_base64_block(
    alice, anthropic_credential, fake_upstream
):
    image = await _upload(alice, "owl.png", IMAGE)
    socket, _connected, _ = await socket_for(alice)
    frames = await _ask(socket, anthropic_credential, "", [image])
    assert frames[-1]["status"] == "complete"
    (posted,) = fake_upstream.posted()
    assert posted["json"]["messages"][-1]["content"] == [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(IMAGE).decode(),
            },
            # The chat's prompt-cache breakpoint (docs/websocket.md, "Prompt caching").
            "cache_control": {"type": "ephemeral"},
        }
    ]
    await socket.disconnect()
    await generation.generations_wait()


async def test_another_user_s_file_is_refused_and_nothing_is_sent_or_saved(
    alice, credential, fake_upstream
):
    mallory = await sync_to_async(UserFactory)()
    theirs = await _upload(alice, "secret.txt", b"the launch code")
    socket, _connected, _ = await socket_for(mallory)
    await socket.send_json_to(
        {
            "type": "send",
            "content": "What does it say?",
            "model": model_for(credential),
            "attachments": [theirs],
            "request_id": 7,
        }
    )
    (error,) = await frames_until(socket, of_type("error"))
    assert error["code"] == "attachment_not_found" and error["request_id"] == 7
    assert "attach it again" in error["message"]
    assert fake_upstream.posted() == []
    assert not await Message.objects.filter(conversation__user=mallory).aexists()
    assert not await Conversation.objects.filter(user=mallory).aexists()
    await socket.disconnect()


async def test_a_sideways_photo_reaches_the_model_upright(alice, credential, fake_upstream):
    import io

    from PIL import Image

    photo = await _upload(alice, "photo.jpg", jpeg(40, 30, orientation=6))
    socket, _connected, _ = await socket_for(alice)
    await _ask(socket, credential, "@reply=Trees.", [photo])
    url = fake_upstream.posted()[0]["json"]["messages"][-1]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as sent:
        assert sent.size == (30, 40)
    await socket.disconnect()
    await generation.generations_wait()
