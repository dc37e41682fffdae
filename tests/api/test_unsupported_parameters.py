"""Parameters this server does not implement are refused in the caller's error shape, never
dropped silently; the values that ask for nothing are accepted. Nothing reaches the
provider and nothing is billed for a refused request."""

import pytest

from tests.api.test_chat_completions import body, post, usage_rows

pytestmark = pytest.mark.django_db(transaction=True)


def upstream_calls(fake_upstream):
    return fake_upstream.posted()


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("tools", [TOOL]),
        ("tool_choice", "required"),
        ("tool_choice", {"type": "function", "function": {"name": "weather"}}),
        ("functions", [{"name": "weather", "parameters": {"type": "object"}}]),
        ("function_call", {"name": "weather"}),
        ("response_format", {"type": "json_object"}),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_chat_completions_refuses_what_it_does_not_implement(
    auth, fake_upstream, param, value, stream
):
    response = await post("/v1/chat/completions", body(stream=stream, **{param: value}), auth)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "unsupported_parameter" and error["param"] == param
    assert error["message"].startswith(f"The parameter '{param}' is not supported by this server")
    assert upstream_calls(fake_upstream) == []
    assert await usage_rows() == []


@pytest.mark.parametrize(
    "harmless",
    [
        {"tools": []},
        {"tools": None},
        {"tool_choice": "none"},
        {"tool_choice": "auto"},
        {"functions": []},
        {"function_call": "none"},
        {"response_format": {"type": "text"}},
        {"n": 1},
        {"logprobs": False},
        {"top_logprobs": 0},
        {"modalities": ["text"]},
        {"parallel_tool_calls": False, "seed": 7, "user": "u-1"},
    ],
    ids=lambda harmless: ",".join(harmless),
)
async def test_chat_completions_accepts_the_values_that_ask_for_nothing(
    auth, fake_upstream, harmless
):
    response = await post("/v1/chat/completions", body('@reply="plain"', **harmless), auth)

    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"] == "plain"
    [sent] = upstream_calls(fake_upstream)
    assert not {"tools", "tool_choice", "response_format", "n", "logprobs"} & sent["json"].keys()


TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "param", "message"),
    [
        (
            [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "Let me look."},
                {"role": "user", "content": "well?"},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "messages[3].role",
            "The role 'tool' (messages[3].role) is not supported by this server (tool calls "
            "are not implemented, so there are no tool results to send).",
        ),
        (
            [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "messages[1].tool_calls",
            "The parameter 'messages[1].tool_calls' is not supported by this server (tool "
            "calls are not implemented; send messages without tool_calls).",
        ),
        (
            [
                {"role": "user", "content": "weather?"},
                {"role": "function", "name": "weather", "content": "sunny"},
            ],
            "messages[1].role",
            "The role 'function' (messages[1].role) is not supported by this server (function "
            "calls are not implemented, so there are no function results to send).",
        ),
        (
            [
                {"role": "assistant", "content": None, "function_call": {"name": "weather"}},
                {"role": "user", "content": "weather?"},
            ],
            "messages[0].function_call",
            "The parameter 'messages[0].function_call' is not supported by this server "
            "(function calls are not implemented).",
        ),
    ],
    ids=["tool-role", "tool-calls", "function-role", "function-call"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_chat_completions_refuses_the_messages_of_a_tool_conversation(
    auth, fake_upstream, messages, param, message, stream
):
    payload = {"model": "fake-small", "messages": messages, "stream": stream}
    response = await post("/v1/chat/completions", payload, auth)

    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": "unsupported_parameter",
        }
    }
    assert upstream_calls(fake_upstream) == []
    assert await usage_rows() == []


async def test_an_assistant_message_with_no_tool_calls_is_accepted(auth, fake_upstream):
    messages = [
        {"role": "assistant", "content": "Hello.", "tool_calls": []},
        {"role": "user", "content": '@reply="plain"'},
    ]
    response = await post(
        "/v1/chat/completions", {"model": "fake-small", "messages": messages}, auth
    )

    assert response.status_code == 200, response.content
    [sent] = upstream_calls(fake_upstream)
    assert sent["json"]["messages"][0] == {"role": "assistant", "content": "Hello."}


async def test_tools_are_named_before_the_messages_that_use_them(auth, fake_upstream):
    messages = [{"role": "user", "content": "hi"}, {"role": "tool", "content": "sunny"}]
    response = await post("/v1/chat/completions", body(tools=[TOOL], messages=messages), auth)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"


async def test_a_role_this_api_never_had_is_still_an_invalid_request(auth, fake_upstream):
    messages = [{"role": "wizard", "content": "hi"}]
    response = await post(
        "/v1/chat/completions", {"model": "fake-small", "messages": messages}, auth
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", "messages.0.role")


async def test_a_refusal_needs_a_valid_key_first(credential, fake_upstream):
    response = await post("/v1/chat/completions", body(tools=[TOOL]), {})
    assert response.status_code == 401


def message_body(**extra):
    return {
        "model": "fake-small",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": '@reply="plain"'}],
        **extra,
    }


ANTHROPIC_TOOL = {"name": "weather", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("tools", [ANTHROPIC_TOOL]),
        ("tool_choice", {"type": "any"}),
        ("tool_choice", {"type": "tool", "name": "weather"}),
        ("thinking", {"type": "enabled", "budget_tokens": 1024}),
    ],
)
async def test_messages_refuses_tools_in_anthropics_shape(auth, fake_upstream, param, value):
    response = await post("/v1/messages", message_body(**{param: value}), auth)

    assert response.status_code == 400, response.content
    data = response.json()
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert data["error"]["message"].startswith(
        f"The parameter '{param}' is not supported by this server"
    )
    assert upstream_calls(fake_upstream) == []
    assert await usage_rows() == []


@pytest.mark.parametrize(
    ("block", "position"),
    [
        ({"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}, (1, 0)),
        ({"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}, (2, 0)),
    ],
    ids=["tool_use", "tool_result"],
)
async def test_messages_refuses_tool_blocks_in_anthropics_shape(
    auth, fake_upstream, block, position
):
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking."}]},
        {"role": "user", "content": "well?"},
    ]
    index, at = position
    messages[index] = {**messages[index], "content": [block]}
    response = await post("/v1/messages", message_body(messages=messages), auth)

    assert response.status_code == 400, response.content
    where = f"messages[{index}].content[{at}].type"
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"The content block type '{block['type']}' ({where}) is not supported "
            "by this server (tool use is not implemented; send no tool_use or tool_result "
            "blocks).",
        },
    }
    assert upstream_calls(fake_upstream) == []
    assert await usage_rows() == []


@pytest.mark.parametrize(
    "harmless",
    [{"tools": []}, {"tool_choice": {"type": "none"}}, {"thinking": {"type": "disabled"}}],
    ids=lambda harmless: ",".join(harmless),
)
async def test_messages_accepts_the_values_that_ask_for_nothing(auth, fake_upstream, harmless):
    response = await post("/v1/messages", message_body(**harmless), auth)

    assert response.status_code == 200, response.content
    assert response.json()["content"] == [{"type": "text", "text": "plain"}]


async def test_the_openapi_document_says_which_parameters_are_refused(credential):
    from tests.api.client import AsyncClient

    spec = (await AsyncClient().get("/v1/openapi.json")).json()
    chat = spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    for name in ("tools", "tool_choice", "response_format", "n", "logprobs"):
        assert "unsupported_parameter" in chat[name]["description"], name
    assert "temperature_unsupported" in chat["temperature"]["description"]
    messages = spec["components"]["schemas"]["AnthropicMessagesRequest"]["properties"]
    assert "unsupported_parameter" in messages["tools"]["description"]
    refused = spec["paths"]["/chat/completions"]["post"]["responses"]["400"]["description"]
    assert "unsupported_parameter" in refused and "temperature_unsupported" in refused


async def test_the_api_docs_page_says_what_is_refused(api_key):
    from asgiref.sync import sync_to_async

    from tests.api.test_chat_completions import api_docs_page

    html = await sync_to_async(api_docs_page)(api_key[0].user)
    assert "<code>unsupported_parameter</code>" in html
    assert "<code>temperature_unsupported</code>" in html
