"""/v1/responses, OpenAI's Responses API (its stored answers: test_stored_responses): the
answer's shape, streamed and not, against the fake upstream over HTTP; what it sends
upstream; billing; errors before and during the stream; and the parameters it refuses rather
than drops."""

import json

import pytest
from asgiref.sync import sync_to_async

from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.api.client import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def post(payload, headers):
    return await AsyncClient().post("/v1/responses", data=json.dumps(payload), headers=headers)


def events_of(content: bytes) -> list[tuple[str, dict]]:
    """(event name, data) of each SSE event."""
    out = []
    for block in content.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


@sync_to_async
def usage_rows():
    ledger_flush()
    return list(UsageEvent.objects.order_by("pk"))


def upstream_posts(fake_upstream):
    return [r for r in fake_upstream.posted() if r["path"].endswith("/chat/completions")]


async def test_a_response_has_openais_shape_and_is_billed_as_the_key(auth, api_key, fake_upstream):
    response = await post(
        {
            "model": "fake-small",
            "input": '@reply="Bonjour tout le monde"',
            "instructions": "Answer in French.",
            "metadata": {"ticket": "42"},
            "max_output_tokens": 300,
        },
        auth,
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["object"] == "response" and data["id"].startswith("resp_")
    assert data["status"] == "completed" and data["incomplete_details"] is None
    assert data["model"] == "fake-small" and data["store"] is True
    assert data["instructions"] == "Answer in French." and data["max_output_tokens"] == 300
    assert data["metadata"] == {"ticket": "42"}
    [message] = data["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["status"] == "completed" and message["id"].startswith("msg_")
    assert message["content"] == [
        {"type": "output_text", "text": "Bonjour tout le monde", "annotations": [], "logprobs": []}
    ]

    [row] = await usage_rows()
    assert (row.source, row.api_key_id, row.status) == ("api", api_key[0].pk, "ok")
    assert data["usage"]["input_tokens"] == row.input_tokens > 0
    assert data["usage"]["output_tokens"] == row.output_tokens > 0
    assert data["usage"]["total_tokens"] == row.input_tokens + row.output_tokens

    [sent] = upstream_posts(fake_upstream)
    assert sent["json"]["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": '@reply="Bonjour tout le monde"'},
    ]
    assert sent["json"]["max_tokens"] == 300


async def test_a_conversation_in_input_reaches_the_model_in_order_images_included(
    auth, fake_upstream
):
    image = "data:image/png;base64,iVBORw0KGgo="
    response = await post(
        {
            "model": "fake-small",
            "input": [
                {"role": "developer", "content": "Be brief."},
                {"type": "message", "role": "user", "content": "What is this?"},
                {
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "A square."}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": '@reply="Red"'},
                        {"type": "input_image", "image_url": image, "detail": "low"},
                    ],
                },
            ],
            "reasoning": {"effort": "low"},
            "user": "end-user-7",
        },
        auth,
    )
    assert response.status_code == 200, response.content
    assert response.json()["output"][0]["content"][0]["text"] == "Red"
    assert response.json()["reasoning"] == {"effort": "low", "summary": None}
    [sent] = upstream_posts(fake_upstream)
    messages = sent["json"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "What is this?" and messages[2]["content"] == "A square."
    assert {"type": "image_url", "image_url": {"url": image}} in messages[3]["content"]
    assert sent["json"]["reasoning_effort"] == "low" and sent["json"]["user"] == "end-user-7"


async def test_an_answer_cut_by_the_output_limit_is_incomplete(auth):
    response = await post({"model": "fake-small", "input": "@tokens=5 @finish=length"}, auth)
    data = response.json()
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["output"][0]["status"] == "incomplete"


async def test_a_streamed_response_sends_openais_events_in_order(auth):
    response = await post(
        {"model": "fake-small", "input": '@reply="one two three" @delay=0.05', "stream": True},
        auth,
    )
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = events_of(response.content)
    names = [name for name, _ in events]
    assert all(data["type"] == name for name, data in events)
    deltas = [data["delta"] for name, data in events if name == "response.output_text.delta"]
    assert len(deltas) >= 2 and "".join(deltas) == "one two three"
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    created = events[0][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    message_id = events[2][1]["item"]["id"]
    for name, data in events[3:-1]:
        assert data.get("item_id", data.get("item", {}).get("id")) == message_id, name
    assert events[-4][1]["text"] == "one two three"
    final = events[-1][1]["response"]
    assert final["id"] == created["id"] and final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "one two three"
    [row] = await usage_rows()
    assert final["usage"]["output_tokens"] == row.output_tokens > 0


async def test_a_failure_before_the_first_token_is_an_http_error(auth):
    response = await post({"model": "fake-small", "input": "@status=429 @retry_after=7"}, auth)
    assert response.status_code == 429 and response["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"
    streamed = await post(
        {"model": "fake-small", "input": "@status=429 @retry_after=7", "stream": True}, auth
    )
    assert streamed.status_code == 429


async def test_a_failure_mid_stream_ends_with_an_error_and_a_failed_response(auth):
    response = await post(
        {
            "model": "fake-small",
            "input": "@tokens=6 @stream_error=server @error_after=2",
            "stream": True,
        },
        auth,
    )
    events = events_of(response.content)
    names = [name for name, _ in events]
    assert "response.output_text.delta" in names
    assert names[-2:] == ["error", "response.failed"]
    error, failed = events[-2][1], events[-1][1]["response"]
    assert error["message"] and error["code"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": error["code"], "message": error["message"]}
    [row] = await usage_rows()
    assert row.status == "error"


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"conversation": "conv_1"}, "conversation"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}, "text.format"),
        ({"reasoning": {"effort": "low", "summary": "auto"}}, "reasoning.summary"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        (
            {"input": [{"type": "function_call_output", "call_id": "c1", "output": "4"}]},
            "input[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio", "data": "x"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
    ],
)
async def test_what_this_server_does_not_implement_is_refused_naming_it(
    auth, fake_upstream, extra, param
):
    response = await post({"model": "fake-small", "input": "hi", **extra}, auth)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["param"] == param
    assert not upstream_posts(fake_upstream)
    assert not await usage_rows()


async def test_values_that_ask_for_nothing_are_accepted(auth):
    response = await post(
        {
            "model": "fake-small",
            "input": '@reply="fine"',
            "store": False,
            "tools": [],
            "tool_choice": "auto",
            "include": ["reasoning.encrypted_content"],
            "text": {"format": {"type": "text"}, "verbosity": "low"},
            "truncation": "disabled",
            "parallel_tool_calls": False,
            "service_tier": "auto",
        },
        auth,
    )
    assert response.status_code == 200, response.content
    assert response.json()["output"][0]["content"][0]["text"] == "fine"
    assert response.json()["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    "payload, param",
    [
        ({"input": "hi"}, "model"),
        ({"model": "fake-small"}, "input"),
        ({"model": "fake-small", "input": []}, "input"),
        ({"model": "fake-small", "input": "hi", "temperature": 3}, "temperature"),
        ({"model": "fake-small", "input": [{"content": "no role"}]}, "input[0].role"),
    ],
)
async def test_a_malformed_request_is_refused_naming_the_field(auth, fake_upstream, payload, param):
    response = await post(payload, auth)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not upstream_posts(fake_upstream)


async def test_a_missing_key_or_a_model_outside_the_allow_list_is_refused(api_key, auth):
    from api.models import ApiKey

    assert (await post({"model": "fake-small", "input": "hi"}, {})).status_code == 401
    await ApiKey.objects.filter(pk=api_key[0].pk).aupdate(allowed_models=["fake-large"])
    response = await post({"model": "fake-small", "input": "hi"}, auth)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"
