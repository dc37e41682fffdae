import json

import pytest
from asgiref.sync import sync_to_async

from api.services import api_keys_changed
from billing.ledger import ledger_flush
from billing.models import UsageEvent
from tests.api.client import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


def body(text="hi", **extra):
    return {"model": "fake-small", "messages": [{"role": "user", "content": text}], **extra}


async def post(path, payload, headers, **kw):
    return await AsyncClient().post(
        path,
        data=json.dumps(payload) if not isinstance(payload, (bytes, str)) else payload,
        content_type="application/json",
        headers=headers,
        **kw,
    )


def sse_events(content: bytes) -> list:
    lines = [line[6:] for line in content.decode().split("\n") if line.startswith("data: ")]
    return lines


@sync_to_async
def usage_rows():
    ledger_flush()  # what the server process has queued is written
    return list(UsageEvent.objects.order_by("pk"))


async def test_a_non_streaming_completion_has_openais_shape_and_provider_usage(auth):
    response = await post("/v1/chat/completions", body('@reply="Hello there friend"'), auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hello there friend"}
    assert data["choices"][0]["finish_reason"] == "stop"
    [row] = await usage_rows()
    assert data["usage"]["prompt_tokens"] == row.input_tokens
    assert data["usage"]["completion_tokens"] == row.output_tokens
    assert row.source == "api" and row.api_key_id is not None and not row.estimated


async def test_a_streamed_completion_sends_chunks_usage_and_done(auth):
    response = await post(
        "/v1/chat/completions",
        body('@reply="one two three"', stream=True, stream_options={"include_usage": True}),
        auth,
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    content = b"".join([chunk async for chunk in response.streaming_content])
    lines = sse_events(content)
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.split() == ["one", "two", "three"]
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "stop"
    usage = chunks[-1]["usage"]
    [row] = await usage_rows()
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        row.input_tokens,
        row.output_tokens,
    )


async def test_keys_are_accepted_in_the_x_api_key_header_too(api_key):
    response = await post("/v1/chat/completions", body(), {"x-api-key": api_key[1]})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "Missing API key"), ({"Authorization": "Bearer ax-nope"}, "Invalid API key")],
)
async def test_a_missing_or_wrong_key_is_401_in_openais_error_shape(credential, headers, message):
    response = await post("/v1/chat/completions", body(), headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert message in error["message"] and error["code"] == "authentication"
    assert await usage_rows() == []


async def test_a_revoked_or_expired_key_is_refused(api_key, auth):
    from django.utils import timezone

    from api.models import ApiKey

    key = api_key[0]
    await ApiKey.objects.filter(pk=key.pk).aupdate(expires_at=timezone.now())
    await sync_to_async(api_keys_changed)()
    response = await post("/v1/chat/completions", body(), auth)
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    await ApiKey.objects.filter(pk=key.pk).aupdate(expires_at=None, revoked_at=timezone.now())
    await sync_to_async(api_keys_changed)()
    response = await post("/v1/chat/completions", body(), auth)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


async def test_a_model_outside_the_keys_allow_list_is_403(api_key, auth):
    from api.models import ApiKey

    await ApiKey.objects.filter(pk=api_key[0].pk).aupdate(allowed_models=["fake-large"])
    response = await post("/v1/chat/completions", body(), auth)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "model_not_allowed"
    assert (
        await post("/v1/chat/completions", {**body(), "model": "fake-large"}, auth)
    ).status_code == 200


async def test_an_unknown_model_is_404(auth):
    response = await post("/v1/chat/completions", {**body(), "model": "no-such-model"}, auth)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "fake-small"}, "messages"),
        ({"model": "fake-small", "messages": "hello"}, "messages"),
        (
            {
                "model": "fake-small",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
        ),
        (
            {
                "model": "fake-small",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": -1,
            },
            "max_tokens",
        ),
        (
            {"model": "fake-small", "messages": [{"role": "wizard", "content": "x"}]},
            "messages.0.role",
        ),
        (  # named where the client wrote it, not after the first of content's types
            {
                "model": "fake-small",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}],
            },
            "messages.0.content.0.text",
        ),
    ],
)
async def test_wrong_types_are_refused_before_any_upstream_call(
    auth, fake_upstream, payload, field
):
    response = await post("/v1/chat/completions", payload, auth)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]
    assert not [r for r in fake_upstream.requests if r["path"].endswith("/chat/completions")]


async def test_unknown_fields_are_ignored_as_openai_does(auth, fake_upstream):
    ignored = {
        "store": True,
        "metadata": {"team": "x"},
        "service_tier": "flex",
        "parallel_tool_calls": False,
        "prediction": {"type": "content", "content": "hi"},
        "something_new": 1,
    }
    response = await post("/v1/chat/completions", body(**ignored), auth)
    assert response.status_code == 200
    [sent] = fake_upstream.posted()
    assert not ignored.keys() & sent["json"].keys()


async def test_invalid_json_and_oversized_bodies_are_refused(auth, settings):
    response = await post("/v1/chat/completions", "{not json", auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    huge = body("x" * (9 * 1024 * 1024))
    response = await post("/v1/chat/completions", huge, auth)
    assert response.status_code == 413


async def test_upstream_rate_limit_maps_to_429_with_retry_after(auth):
    response = await post("/v1/chat/completions", body("@status=429 @retry_after=7"), auth)
    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "rate_limited"


async def test_a_provider_refusing_its_key_is_a_502_not_the_callers_401(auth):
    # 401 tells an SDK user their own AURAX key is wrong (the SDK raises AuthenticationError);
    # the key the provider refused is the administrator's.
    response = await post("/v1/chat/completions", body("@status=401"), auth)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "authentication" and error["type"] == "server_error"
    assert error["message"] == "The provider rejected the API key."


async def test_upstream_outage_maps_to_a_5xx(auth):
    response = await post("/v1/chat/completions", body("@status=503"), auth)
    assert response.status_code in (502, 503)
    assert "SECRET" not in response.content.decode()


async def test_an_exhausted_budget_is_429_with_the_budget_message(api_key, auth):
    from decimal import Decimal

    from billing.models import BudgetScope
    from billing.services import budget_upsert

    key = api_key[0]
    await sync_to_async(budget_upsert)(
        scope=BudgetScope.WORKSPACE,
        workspace_id=key.workspace_id,
        cost_limit=Decimal("0"),
        token_limit=None,
    )
    response = await post("/v1/chat/completions", {**body(), "model": "gpt-4o-mini"}, auth)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "budget_reached"
    assert "budget" in response.json()["error"]["message"].lower()
    assert "reached" in response.json()["error"]["message"]
    assert "Retry-After" not in response.headers  # waiting a moment does not help
    docs = await sync_to_async(api_docs_page)(key.user)
    assert "<code>budget_reached</code>" in docs and "no Retry-After" in docs


def api_docs_page(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.get("/settings/api-docs/").content.decode()


async def test_a_request_too_large_for_what_is_left_of_a_key_budget_says_so(api_key, auth):
    from decimal import Decimal

    from billing.models import BudgetScope, ModelPriceOverride
    from billing.services import budget_upsert
    from tests.billing.conftest import record_call

    key = api_key[0]

    @sync_to_async
    def spend_on_the_key():
        budget_upsert(
            scope=BudgetScope.API_KEY,
            workspace_id=key.workspace_id,
            api_key_id=key.pk,
            cost_limit=Decimal("0.05"),
            token_limit=None,
        )
        ModelPriceOverride.objects.create(
            provider_kind="openai", model="m", input_per_mtok=1000, output_per_mtok=1000
        )
        record_call(key.workspace, key.user, api_key_id=key.pk, model="m", input_tokens=22)

    await spend_on_the_key()  # $0.022 of $0.05
    response = await post(
        "/v1/chat/completions", {**body(), "model": "gpt-4o-mini", "max_tokens": 100_000}, auth
    )

    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "budget_reached"
    assert error["message"].startswith("API key budget of $0.05 for ")
    assert ": $0.028 left, and this request could cost up to $0." in error["message"]
    assert "up to 100,000 output tokens" in error["message"] and "reached" not in error["message"]
    assert "Retry-After" not in response.headers


async def test_models_lists_what_the_key_may_use(api_key, auth):
    response = await AsyncClient().get("/v1/models", headers=auth)
    assert response.status_code == 200
    ids = [m["id"] for m in response.json()["data"]]
    assert {"fake-small", "fake-large"} <= set(ids)
    from api.models import ApiKey

    await ApiKey.objects.filter(pk=api_key[0].pk).aupdate(allowed_models=["fake-large"])
    await sync_to_async(api_keys_changed)()
    response = await AsyncClient().get("/v1/models", headers=auth)
    assert [m["id"] for m in response.json()["data"]] == ["fake-large"]


async def test_the_openapi_description_is_served(credential):
    response = await AsyncClient().get("/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert (
        "/chat/completions" in spec["paths"]
        and "ChatCompletionRequest" in spec["components"]["schemas"]
    )


async def test_embeddings_return_openais_shape_and_record_usage(auth, fake_upstream):
    response = await post(
        "/v1/embeddings", {"model": "fake-small", "input": ["hello world", "second"]}, auth
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert [d["index"] for d in data["data"]] == [0, 1]
    assert all(isinstance(d["embedding"], list) and d["embedding"] for d in data["data"])
    [row] = await usage_rows()
    assert row.source == "api" and row.status == "ok" and row.output_tokens == 0
    assert data["usage"]["prompt_tokens"] == row.input_tokens > 0
    assert [r for r in fake_upstream.requests if r["path"].endswith("/embeddings")]


async def test_embeddings_as_base64_decode_to_the_same_floats(auth):
    import base64
    import struct

    floats = (await post("/v1/embeddings", {"model": "fake-small", "input": "x"}, auth)).json()[
        "data"
    ][0]["embedding"]
    encoded = (
        await post(
            "/v1/embeddings",
            {"model": "fake-small", "input": "x", "encoding_format": "base64"},
            auth,
        )
    ).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert [round(v, 5) for v in decoded] == [round(v, 5) for v in floats]


async def test_an_embeddings_upstream_failure_is_recorded_and_mapped(auth):
    response = await post("/v1/embeddings", {"model": "fake-small", "input": "x @status=503"}, auth)
    assert response.status_code in (502, 503)
    [row] = await usage_rows()
    assert row.status == "error"


async def test_api_responses_carry_the_request_id(auth):
    response = await post("/v1/chat/completions", body(), {**auth, "X-Request-ID": "trace-7"})
    assert response["x-request-id"] == "trace-7"
    response = await post("/v1/chat/completions", body(), {**auth, "X-Request-ID": "bad id"})
    assert response["x-request-id"] != "bad id" and len(response["x-request-id"]) == 32


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
async def test_redis_not_answering_is_a_503_to_retry_not_an_internal_error(
    auth, monkeypatch, stream
):
    import redis

    from gateway import pipeline

    def unreachable(**kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(pipeline, "ratelimit_check_for", unreachable)  # the admission's step
    response = await post("/v1/chat/completions", body(stream=stream), auth)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"  # OpenAI's SDKs wait this long and retry
    error = response.json()["error"]
    assert error["code"] == "unavailable" and error["type"] == "server_error"
    assert "6379" not in error["message"]  # nothing of the set-up is told


async def test_a_store_not_answering_outside_the_pipeline_is_a_503_too(auth, monkeypatch):
    from django.db import OperationalError

    from api import handlers
    from api.handlers import Route

    async def unreachable(request):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed")

    monkeypatch.setitem(handlers.ROUTES, "/v1/models", Route(unreachable, "openai", ("GET",)))
    response = await AsyncClient().get("/v1/models", headers=auth)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "5432" not in response.content.decode()


async def test_a_model_whose_provider_keeps_failing_is_503_with_retry_after_not_404(auth, settings):
    """Once the circuit opens, the model is still listed but skipped for the cool-down: the
    SDKs must be told to wait and retry, not that the model does not exist."""
    settings.PROVIDER_CIRCUIT_FAILURES = 2
    settings.PROVIDER_CIRCUIT_COOLDOWN = 42
    for _ in range(2):
        assert (await post("/v1/chat/completions", body("@status=503"), auth)).status_code == 503

    response = await post("/v1/chat/completions", body(), auth)

    assert response.status_code == 503
    assert 40 <= int(response["Retry-After"]) <= 42
    error = response.json()["error"]
    assert error["code"] == "overloaded" and error["type"] == "server_error"
    assert "“fake-small” is temporarily unavailable" in error["message"]
    listed = await AsyncClient().get("/v1/models", headers=auth)
    assert "fake-small" in [m["id"] for m in listed.json()["data"]]
    anthropic = await post("/v1/messages", {**body(), "max_tokens": 10}, auth)
    assert anthropic.status_code == 503 and anthropic["Retry-After"] == response["Retry-After"]
    assert anthropic.json()["error"]["type"] == "overloaded_error"
    embedding = await post("/v1/embeddings", {"model": "fake-small", "input": "x"}, auth)
    assert embedding.status_code == 503 and embedding["Retry-After"]


async def test_a_small_tokens_per_minute_limit_admits_requests_without_max_tokens(api_key, auth):
    from billing.models import RateLimit, RateLimitScope

    await RateLimit.objects.acreate(scope=RateLimitScope.API_KEY, api_key_id=api_key[0].pk, tpm=500)

    for _ in range(3):  # each counts what it used once it is answered
        response = await post("/v1/chat/completions", body("@tokens=5"), auth)
        assert response.status_code == 200, response.content
    streamed = await post("/v1/chat/completions", body("@tokens=5", stream=True), auth)
    assert streamed.status_code == 200 and b"[DONE]" in streamed.content


async def test_a_request_larger_than_the_tokens_per_minute_limit_is_refused_for_good(api_key, auth):
    from billing.models import RateLimit, RateLimitScope

    await RateLimit.objects.acreate(scope=RateLimitScope.API_KEY, api_key_id=api_key[0].pk, tpm=50)

    response = await post("/v1/chat/completions", body(max_tokens=100), auth)

    assert response.status_code == 400  # the SDKs do not retry it
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert error["code"] == "request_too_large_for_limit"
    assert "more than the API key's limit allows in a minute (50 tokens)" in error["message"]
    assert (await post("/v1/chat/completions", body(max_tokens=20), auth)).status_code == 200
