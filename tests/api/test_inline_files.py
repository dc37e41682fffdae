"""Files sent inline in /v1 requests (chat completions' `file` parts, Responses'
`input_file`): read as a chat attachment is, a document's text given to the model after the
message's own, an image as an image; what cannot be read is refused before any call."""

import base64

import pytest

from tests.api.client import AsyncClient
from tests.api.test_chat_completions import post as post_to
from tests.api.test_responses import post, upstream_posts
from tests.api.test_stored_responses import usage_count
from tests.chat.files import pdf, png, xlsx

pytestmark = pytest.mark.django_db(transaction=True)


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


PDF = data_url("application/pdf", pdf("Revenue rose 12 percent"))


def chat(*parts) -> dict:
    return {"model": "fake-small", "messages": [{"role": "user", "content": list(parts)}]}


def file_part(file_data: str, filename: str = "report.pdf", **extra) -> dict:
    return {"type": "file", "file": {"filename": filename, "file_data": file_data, **extra}}


async def test_a_chat_completion_s_pdf_reaches_the_model_as_text(auth, fake_upstream):
    response = await post_to(
        "/v1/chat/completions",
        chat({"type": "text", "text": '@reply="Up."'}, file_part(PDF)),
        auth,
    )
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"] == "Up."
    [sent] = upstream_posts(fake_upstream)
    assert sent["json"]["messages"][-1]["content"] == (
        '@reply="Up."\n\n<file name="report.pdf">\nRevenue rose 12 percent\n</file>'
    )


async def test_a_responses_workbook_and_image_reach_the_model(auth, fake_upstream):
    sheet = xlsx({"Owls": [["Owl", "Prey"], ["Barn", "Mice"]]})
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    image = png()
    response = await post(
        {
            "model": "fake-small",
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": '@reply="Seen."'},
                        {
                            "type": "input_file",
                            "filename": "owls.xlsx",
                            "file_data": data_url(media, sheet),
                        },
                        # An image sent as a file goes to the model as an image.
                        {
                            "type": "input_file",
                            "filename": "owl.png",
                            "file_data": data_url("image/png", image),
                        },
                    ],
                }
            ],
        },
        auth,
    )
    assert response.status_code == 200, response.content
    [sent] = upstream_posts(fake_upstream)
    text, picture = sent["json"]["messages"][-1]["content"]
    assert text["text"] == (
        '@reply="Seen."\n\n<file name="owls.xlsx">\n## Sheet: Owls\nOwl | Prey\nBarn | Mice\n'
        "</file>"
    )
    assert picture == {"type": "image_url", "image_url": {"url": data_url("image/png", image)}}

    # Kept with the response: its input items list the file, and a response that follows
    # it gives the model the file's text again.
    answer = response.json()
    listed = await AsyncClient().get(f"/v1/responses/{answer['id']}/input_items", headers=auth)
    [item] = listed.json()["data"]
    assert item["content"][1] == {
        "type": "input_file",
        "filename": "owls.xlsx",
        "file_data": data_url(media, sheet),
    }
    followed = await post(
        {"model": "fake-small", "input": '@reply="Again."', "previous_response_id": answer["id"]},
        auth,
    )
    assert followed.status_code == 200, followed.content
    assert (
        "## Sheet: Owls"
        in upstream_posts(fake_upstream)[-1]["json"]["messages"][0]["content"][0]["text"]
    )


@pytest.mark.parametrize(
    "payload, status, code, param, said",
    [
        (
            chat(file_part(data_url("application/pdf", b"%PDF-1.4\nnot a PDF"))),
            400,
            "invalid_file",
            "messages[0].content[0].file.file_data",
            "The PDF is damaged and cannot be read.",
        ),
        (
            chat(file_part("%%% not base64 %%%")),
            400,
            "invalid_file",
            "messages[0].content[0].file.file_data",
            "is not base64",
        ),
        (
            chat({"type": "text", "text": "hi"}, file_part("", file_id="file-abc")),
            400,
            "unsupported_parameter",
            "messages[0].content[1].file.file_id",
            "uploaded file ids are not supported",
        ),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_before_any_call(
    auth, fake_upstream, payload, status, code, param, said
):
    before = await usage_count()
    response = await post_to("/v1/chat/completions", payload, auth)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param) and said in error["message"]
    assert not upstream_posts(fake_upstream) and await usage_count() == before


async def test_responses_refuses_a_file_by_url_or_id(auth, fake_upstream):
    for extra, param in (
        ({"file_url": "https://example.com/a.pdf"}, "input[0].content[0].file_url"),
        ({"file_id": "file-abc"}, "input[0].content[0].file_id"),
    ):
        response = await post(
            {
                "model": "fake-small",
                "input": [{"role": "user", "content": [{"type": "input_file", **extra}]}],
            },
            auth,
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"]["param"] == param
    assert not upstream_posts(fake_upstream)


async def test_without_a_valid_key_no_file_is_read(fake_upstream, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("read without a key")

    monkeypatch.setattr("chat.attachments.upload_read", never)
    response = await post_to(
        "/v1/chat/completions", chat(file_part(PDF)), {"Authorization": "Bearer ax-wrong"}
    )
    assert response.status_code == 401
