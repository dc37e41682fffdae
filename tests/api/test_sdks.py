"""The official `openai` and `anthropic` SDKs, unchanged, against a live AURAX server whose
providers are the fake upstream."""

import base64
import http.client
import json
import threading
import time

import anthropic
import openai
import pytest

from tests.fixtures.servers import AuraxServer, make_server_env

UPSTREAM_KEY = "sk-upstream-RECOGNISABLE-9931"


@pytest.fixture(scope="module")
def live(tmp_path_factory, _fake_upstream_server, _static_collected):
    fake = _fake_upstream_server
    directory = tmp_path_factory.mktemp("aurax-api")
    env = make_server_env(
        directory,
        OPENAI_API_KEY=UPSTREAM_KEY,
        OPENAI_BASE_URL=fake.base_url("openai"),
        PROVIDER_RETRY_ATTEMPTS="1",
        PROVIDER_RETRY_BASE_DELAY="0.01",
    )
    server = AuraxServer(data_dir=directory, env=env)
    server.manage("migrate", "--noinput", "--verbosity", "0")
    server.manage("aurax_startup")
    server.manage("providers", "check", "--refresh")
    server.create_user("sdk@example.com", "a long passphrase 42")
    raw = server.manage(
        "create_api_key", "--user", "sdk@example.com", "--name", "sdk"
    ).stdout.strip()
    narrow = server.manage(
        "create_api_key", "--user", "sdk@example.com", "--name", "narrow"
    ).stdout.strip()
    server.shell(
        "from api.models import ApiKey\n"
        "ApiKey.objects.filter(name='narrow').update(allowed_models=['fake-large'])\n"
    )
    # An alias served only by Anthropic, whose API takes a temperature up to 1.
    server.shell(
        "from providers.models import AliasTarget, ModelAlias, Scope\n"
        "from providers.services import credential_create\n"
        "c = credential_create(actor=None, scope=Scope.GLOBAL, kind='anthropic', name='Claude',"
        f" api_key='sk-ant-fake-1', base_url={fake.base_url('anthropic')!r},"
        " allow_private_network=True)\n"
        "a = ModelAlias.objects.create(name='claude-only')\n"
        "AliasTarget.objects.create(alias=a, credential=c, model_id='fake-small')\n"
    )
    server.start()
    yield {"server": server, "key": raw, "narrow": narrow, "fake": fake}
    server.stop()


@pytest.fixture
def oai(live):
    return openai.OpenAI(base_url=live["server"].url + "/v1", api_key=live["key"], max_retries=0)


@pytest.fixture
def claude(live):
    return anthropic.Anthropic(base_url=live["server"].url, api_key=live["key"], max_retries=0)


def test_openai_sdk_non_streaming_with_usage(oai):
    result = oai.chat.completions.create(
        model="fake-small", messages=[{"role": "user", "content": '@reply="Bonjour le monde"'}]
    )
    assert result.choices[0].message.content == "Bonjour le monde"
    assert result.usage.completion_tokens > 0 and result.usage.prompt_tokens > 0


def test_openai_sdk_streaming_with_include_usage(oai):
    stream = oai.chat.completions.create(
        model="fake-small",
        messages=[{"role": "user", "content": "@tokens=12"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == [f"tok{i}" for i in range(1, 13)]
    assert chunks[-1].usage.completion_tokens == 12


def test_openai_sdk_lists_models(oai):
    assert {"fake-small", "fake-large"} <= {m.id for m in oai.models.list()}


@pytest.mark.parametrize(
    ("kwargs", "exception"),
    [
        ({"api_key": "ax-wrong"}, openai.AuthenticationError),
        ({"model": "nothing-like-this"}, openai.NotFoundError),
        ({"content": "@status=429 @retry_after=3"}, openai.RateLimitError),
        ({"temperature": 9}, openai.BadRequestError),
        ({"content": "@status=503"}, openai.InternalServerError),
    ],
)
def test_openai_sdk_raises_its_own_exception_for_each_status(live, kwargs, exception):
    client = openai.OpenAI(
        base_url=live["server"].url + "/v1",
        api_key=kwargs.pop("api_key", live["key"]),
        max_retries=0,
    )
    content = kwargs.pop("content", "hi")
    with pytest.raises(exception):
        client.chat.completions.create(
            model=kwargs.pop("model", "fake-small"),
            messages=[{"role": "user", "content": content}],
            **kwargs,
        )


def test_openai_sdk_gets_permission_denied_for_a_model_outside_the_allow_list(live):
    client = openai.OpenAI(
        base_url=live["server"].url + "/v1", api_key=live["narrow"], max_retries=0
    )
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(
            model="fake-small", messages=[{"role": "user", "content": "hi"}]
        )
    assert client.chat.completions.create(
        model="fake-large", messages=[{"role": "user", "content": "hi"}]
    ).choices


def test_anthropic_sdk_non_streaming_and_streaming(claude):
    message = claude.messages.create(
        model="fake-small",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": '@reply="Olá mundo"'}],
    )
    assert message.content[0].text == "Olá mundo"
    assert message.usage.output_tokens > 0
    with claude.messages.stream(
        model="fake-small", max_tokens=100, messages=[{"role": "user", "content": "@tokens=5"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.split() == ["tok1", "tok2", "tok3", "tok4", "tok5"]
    assert final.usage.output_tokens == 5


@pytest.mark.parametrize(
    ("kwargs", "exception"),
    [
        ({"api_key": "ax-wrong"}, anthropic.AuthenticationError),
        ({"model": "nothing-like-this"}, anthropic.NotFoundError),
        ({"content": "@status=429 @retry_after=3"}, anthropic.RateLimitError),
        ({"extra_body": {"temperature": 5}}, anthropic.BadRequestError),
        ({"content": "@status=500"}, anthropic.InternalServerError),
    ],
)
def test_anthropic_sdk_raises_its_own_exception_for_each_status(live, kwargs, exception):
    client = anthropic.Anthropic(
        base_url=live["server"].url, api_key=kwargs.pop("api_key", live["key"]), max_retries=0
    )
    content = kwargs.pop("content", "hi")
    with pytest.raises(exception):
        client.messages.create(
            model=kwargs.pop("model", "fake-small"),
            max_tokens=50,
            messages=[{"role": "user", "content": content}],
            **kwargs,
        )


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tools": [TOOL]}, "tools"),
        ({"tools": [TOOL], "tool_choice": "required"}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"n": 3}, "n"),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
    ],
)
def test_openai_sdk_is_told_which_parameter_is_not_supported(live, oai, kwargs, param):
    live["fake"].reset()
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="fake-small", messages=[{"role": "user", "content": "hi"}], **kwargs
        )
    assert refused.value.param == param and refused.value.code == "unsupported_parameter"
    assert "not supported by this server" in refused.value.message
    assert not live["fake"].posted()


def test_openai_sdk_structured_output_parsing_is_refused_not_answered_in_prose(live, oai):
    from pydantic import BaseModel

    class Weather(BaseModel):
        city: str

    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.parse(
            model="fake-small",
            messages=[{"role": "user", "content": "hi"}],
            response_format=Weather,
        )
    assert refused.value.param == "response_format"


def test_openai_sdk_no_op_values_are_accepted(oai):
    result = oai.chat.completions.create(
        model="fake-small",
        messages=[{"role": "user", "content": '@reply="fine"'}],
        tools=[],
        tool_choice="none",
        n=1,
        response_format={"type": "text"},
    )
    assert result.choices[0].message.content == "fine"


def test_anthropic_sdk_tools_are_refused(live, claude):
    live["fake"].reset()
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(
            model="fake-small",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"name": "weather", "input_schema": {"type": "object"}}],
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "'tools' is not supported by this server" in refused.value.body["error"]["message"]
    assert not live["fake"].posted()


def test_openai_sdk_is_told_the_temperature_range_of_an_anthropic_model(live, oai):
    live["fake"].reset()
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="claude-only", messages=[{"role": "user", "content": "hi"}], temperature=1.5
        )
    assert refused.value.param == "temperature" and refused.value.code == "temperature_unsupported"
    assert "accepts a temperature from 0 to 1, not 1.5" in refused.value.message
    assert not live["fake"].posted()
    warm = oai.chat.completions.create(
        model="claude-only",
        messages=[{"role": "user", "content": '@reply="ok"'}],
        temperature=0.9,
    )
    assert warm.choices[0].message.content == "ok"


def test_a_429_is_sent_with_its_standard_reason_phrase(live):
    connection = http.client.HTTPConnection("127.0.0.1", live["server"].port, timeout=10)
    body = {"model": "fake-small", "messages": [{"role": "user", "content": "@status=429"}]}
    connection.request(
        "POST",
        "/v1/chat/completions",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {live['key']}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    response.read()
    connection.close()

    assert (response.status, response.reason) == (429, "Too Many Requests")


def _texts(stream, endpoint: str):
    """The text deltas of a chat completions or responses stream, as they arrive."""
    for event in stream:
        if endpoint == "responses":
            if event.type == "response.output_text.delta":
                yield event.delta
        elif event.choices and event.choices[0].delta.content:
            yield event.choices[0].delta.content


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_a_client_that_disconnects_mid_stream_stops_the_upstream_and_is_billed(live, endpoint):
    fake, server = live["fake"], live["server"]
    fake.reset()
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=live["key"], max_retries=0)
    question = "@tokens=400 @delay=0.02"
    if endpoint == "responses":
        stream = client.responses.create(model="fake-small", input=question, stream=True)
    else:
        stream = client.chat.completions.create(
            model="fake-small", messages=[{"role": "user", "content": question}], stream=True
        )
    seen, said = [], []
    for event in stream:
        seen.append(event)
        said.extend(_texts([event], endpoint))
        if len(said) >= 5:
            break
    stream.close()
    assert fake.wait_for(lambda: fake.requests and fake.requests[-1]["disconnected"], timeout=5)
    out = server.shell(
        "from billing.models import UsageEvent\n"
        "e = UsageEvent.objects.filter(source='api').latest('pk')\n"
        "print('RESULT', e.status, e.output_tokens)\n"
    )
    status, tokens = out.split("RESULT ", 1)[1].split()[:2]
    assert status == "client_gone"
    assert 5 <= int(tokens) < 400
    if endpoint == "responses":
        # The response's id was given: it is kept, cancelled, with the text said so far.
        [response_id] = {e.response.id for e in seen if e.type == "response.created"}
        deadline = time.monotonic() + 5
        while True:  # kept once the server has seen the client go
            try:
                kept = client.responses.retrieve(response_id)
                break
            except openai.NotFoundError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert kept.status == "cancelled" and kept.usage.output_tokens == int(tokens)
        [message] = kept.output
        assert message.status == "incomplete"
        assert message.content[0].text.startswith("".join(said))


def test_no_key_ever_appears_in_the_server_log(live, oai):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=live["server"].url + "/v1", api_key="ax-leaky-9999", max_retries=0
        ).models.list()
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="fake-small", messages=[{"role": "user", "content": "@status=500"}]
        )
    log = live["server"].log()
    assert live["key"] not in log
    assert UPSTREAM_KEY not in log
    assert "ax-leaky-9999" not in log


def test_openai_sdk_retrieves_a_model(oai, live):
    model = oai.models.retrieve("fake-small")
    assert (model.id, model.object) == ("fake-small", "model")

    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nothing-like-this")
    narrow = openai.OpenAI(
        base_url=live["server"].url + "/v1", api_key=live["narrow"], max_retries=0
    )
    with pytest.raises(openai.NotFoundError):
        narrow.models.retrieve("fake-small")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_openai_sdk_sampling_hints_reach_an_openai_compatible_upstream(live, oai, stream):
    live["fake"].reset()
    result = oai.chat.completions.create(
        model="fake-small",
        messages=[{"role": "user", "content": '@reply="seeded"'}],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.25,
        logit_bias={"50256": -100},
        user="end-user-9",
        stream=stream,
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
    else:
        text = result.choices[0].message.content
    assert text == "seeded"
    [sent] = live["fake"].posted()
    assert sent["path"] == "/v1/chat/completions" and sent["model"] == "fake-small"
    hints = ("seed", "presence_penalty", "frequency_penalty", "logit_bias", "user")
    assert {name: sent["json"].get(name) for name in hints} == {
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.25,
        "logit_bias": {"50256": -100},
        "user": "end-user-9",
    }


def test_openai_sdk_without_hints_sends_none_upstream(live, oai):
    live["fake"].reset()
    oai.chat.completions.create(
        model="fake-small", messages=[{"role": "user", "content": '@reply="plain"'}]
    )
    [sent] = live["fake"].posted()
    assert set(sent["json"]) == {"model", "messages", "stream"}


def test_anthropic_sdk_top_k_and_user_id_reach_an_anthropic_upstream(live, claude):
    live["fake"].reset()
    message = claude.messages.create(
        model="claude-only",
        max_tokens=50,
        messages=[{"role": "user", "content": '@reply="sampled"'}],
        metadata={"user_id": "end-user-3"},
        # This SDK's create() has no sampling arguments of its own any more (temperature,
        # top_p, top_k): they go in the body as the API takes them.
        extra_body={"top_k": 5},
    )
    assert message.content[0].text == "sampled"
    [sent] = live["fake"].posted()
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["top_k"] == 5
    assert sent["json"]["metadata"] == {"user_id": "end-user-3"}


def test_openai_sdk_user_reaches_an_anthropic_upstream_as_its_user_id(live, oai):
    live["fake"].reset()
    oai.chat.completions.create(
        model="claude-only",
        messages=[{"role": "user", "content": '@reply="ok"'}],
        user="end-user-9",
        seed=42,
    )
    [sent] = live["fake"].posted()
    assert sent["path"] == "/v1/messages"
    assert sent["json"]["metadata"] == {"user_id": "end-user-9"}
    assert "seed" not in sent["json"]  # Anthropic's API has none


def test_openai_sdk_is_told_tool_results_are_not_supported(live, oai):
    live["fake"].reset()
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="fake-small",
            messages=[
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "Looking."},
                {"role": "user", "content": "well?"},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
        )
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "messages[3].role"
    assert "The role 'tool' (messages[3].role) is not supported" in refused.value.message
    assert not live["fake"].posted()


def test_openai_sdk_asks_for_the_response_cache_with_a_header_or_extra_body(live, oai):
    live["fake"].reset()
    ask = {"model": "fake-small", "messages": [{"role": "user", "content": '@reply="kept"'}]}

    first = oai.chat.completions.with_raw_response.create(
        **ask, extra_headers={"Cache-Control": "max-age=3600"}
    )
    second = oai.chat.completions.with_raw_response.create(
        **ask, extra_body={"cache": {"s-maxage": 3600}}
    )
    streamed = oai.chat.completions.with_raw_response.create(
        **ask, stream=True, extra_headers={"Cache-Control": "max-age=3600"}
    )

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert streamed.headers["x-cache"] == "hit"
    assert second.parse().choices[0].message.content == "kept"
    chunks = list(streamed.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "kept"
    assert len(live["fake"].posted()) == 1


def test_anthropic_sdk_asks_for_the_response_cache_with_a_header(live, claude):
    live["fake"].reset()
    ask = {
        "model": "fake-small",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": '@reply="gardé"'}],
        "extra_headers": {"Cache-Control": "max-age=3600"},
    }
    first = claude.messages.with_raw_response.create(**ask)
    second = claude.messages.with_raw_response.create(**ask)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.parse().content[0].text == "gardé"
    assert len(live["fake"].posted()) == 1


def test_openai_sdk_responses_plain_and_streamed(live, oai):
    result = oai.responses.create(
        model="fake-small", instructions="Be brief.", input='@reply="Bonjour le monde"'
    )
    assert result.output_text == "Bonjour le monde" and result.status == "completed"
    assert result.usage.output_tokens > 0 and result.usage.input_tokens > 0

    events = list(
        oai.responses.create(
            model="fake-small", input='@reply="un deux trois" @delay=0.05', stream=True
        )
    )
    kinds = [type(event).__name__ for event in events]
    assert kinds[0] == "ResponseCreatedEvent" and kinds[-1] == "ResponseCompletedEvent"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 2 and "".join(deltas) == "un deux trois"
    assert events[-1].response.output_text == "un deux trois"

    # The SDK's own stream helper accumulates the events into the final response.
    with oai.responses.stream(model="fake-small", input='@reply="quatre cinq"') as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == "quatre cinq" == final.output_text


def test_openai_sdk_responses_is_told_what_is_not_supported(live, oai):
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model="fake-small", input="hi", conversation="conv_1")
    assert refused.value.body["param"] == "conversation"
    assert "previous_response_id" in refused.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        oai.responses.create(model="fake-small", input="hi", previous_response_id="resp_1")
    assert unknown.value.code == "previous_response_not_found"


def test_openai_sdk_follows_retrieves_lists_and_deletes_stored_responses(live, oai):
    first = oai.responses.create(model="fake-small", input='@reply="Rome"')
    with oai.responses.stream(
        model="fake-small", input='@reply="Milan"', previous_response_id=first.id
    ) as stream:
        second = stream.get_final_response()
    third = oai.responses.create(
        model="fake-small", input='@reply="Turin"', previous_response_id=second.id
    )
    assert third.previous_response_id == second.id and third.output_text == "Turin"
    [*_, sent] = [r for r in live["fake"].posted() if r["path"].endswith("/chat/completions")]
    assert [m["content"] for m in sent["json"]["messages"]] == [
        '@reply="Rome"',
        "Rome",
        '@reply="Milan"',
        "Milan",
        '@reply="Turin"',
    ]

    assert oai.responses.retrieve(second.id).output_text == "Milan"
    # Newest first: this request's input, then the turns of the responses it follows.
    items = oai.responses.input_items.list(third.id)
    assert [item.content[0].text for item in items] == [
        '@reply="Turin"',
        "Milan",
        '@reply="Milan"',
        "Rome",
        '@reply="Rome"',
    ]
    assert items.data[1].id == second.output[0].id
    oai.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(first.id)


def test_openai_sdk_queues_and_cancels_a_background_response(live, oai):
    queued = oai.responses.create(model="fake-small", input="@reply=later", background=True)
    assert queued.status == "queued" and queued.background is True
    # This server runs no worker: the response waits, and is cancelled before it runs.
    assert oai.responses.retrieve(queued.id).status == "queued"
    assert oai.responses.cancel(queued.id).status == "cancelled"
    assert oai.responses.retrieve(queued.id).status == "cancelled"


def test_openai_sdk_streams_a_background_response_and_takes_it_up_again(live, oai):
    stream = oai.responses.create(
        model="fake-small", input="@tokens=60 @delay=0.05", background=True, stream=True
    )
    created = next(iter(stream))
    assert created.type == "response.created" and created.response.status == "queued"
    response_id = created.response.id
    # This server runs no worker of its own: one is started beside it for this response.
    worker = threading.Thread(
        target=live["server"].shell,
        args=(f"from api.background import response_run\nresponse_run(public_id={response_id!r})",),
    )
    worker.start()
    try:
        said, last = [], None
        for event in stream:
            last = event.sequence_number
            if event.type == "response.output_text.delta":
                said.append(event.delta)
                break
        # The text arrives while the worker is still answering.
        assert said and oai.responses.retrieve(response_id).status == "in_progress"
        stream.close()  # the connection drops; the response goes on

        resumed = oai.responses.retrieve(response_id, stream=True, starting_after=last)
        events = list(resumed)
    finally:
        worker.join(timeout=60)
    assert events[0].sequence_number == last + 1
    said += [e.delta for e in events if e.type == "response.output_text.delta"]
    assert events[-1].type == "response.completed"
    done = events[-1].response
    assert "".join(said) == done.output_text == " ".join(f"tok{i}" for i in range(1, 61))
    assert oai.responses.retrieve(response_id).status == "completed"


def test_openai_sdk_sends_a_pdf_inline(live, oai):
    from tests.chat.files import pdf

    data = base64.b64encode(pdf("Revenue rose 12 percent")).decode()
    live["fake"].reset()
    answer = oai.responses.create(
        model="fake-small",
        input=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_file",
                        "filename": "report.pdf",
                        "file_data": f"data:application/pdf;base64,{data}",
                    },
                    {"type": "input_text", "text": '@reply="Twelve."'},
                ],
            }
        ],
    )
    assert answer.output_text == "Twelve."
    [sent] = [r for r in live["fake"].posted() if r["path"].endswith("/chat/completions")]
    assert "Revenue rose 12 percent" in sent["json"]["messages"][-1]["content"]
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="fake-small",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "file", "file": {"file_data": "not base64 !"}}],
                }
            ],
        )
    assert refused.value.code == "invalid_file"
