"""The OpenAI- and Anthropic-compatible /v1 API: another caller of the one pipeline, so
quotas, rate limits, fallback, usage and cost apply exactly as in the chat.

Handlers are plain async functions of an `ApiRequest`, returning an `ApiResponse` whose body
is bytes or an async iterator of SSE bytes; `api/asgi.py` serves them straight from ASGI,
outside Django's request/response cycle (no session, CSRF, template or locale machinery on
this hot path).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import re
import secrets
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.db import transaction

from aurax.db_threads import db_call
from gateway import pipeline
from gateway.embeddings import embed as embeddings_embed
from gateway.errors import GatewayError
from providers.types import Finish, TextDelta

from . import schemas
from .auth import api_key_authenticate, api_key_from_headers, api_key_model_check
from .errors import ApiError
from .models import StoredResponse
from .selectors import (
    api_model_for_key,
    api_models_for_key,
    stored_response_context,
    stored_response_get,
    stored_response_input,
    stored_response_progress,
)
from .services import (
    api_key_touch,
    stored_response_cancel,
    stored_response_create,
    stored_response_delete,
)

logger = logging.getLogger(__name__)

_FINISH_OPENAI = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "error": "stop",
    "cancelled": "stop",
}
# One encoder for every body: `json.dumps(..., separators=...)` builds a new one per call.
_json_encode = json.JSONEncoder(separators=(",", ":")).encode

_FINISH_ANTHROPIC = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
    "error": "end_turn",
    "cancelled": "end_turn",
}


@dataclass
class ApiRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    request_id: str = ""
    query: dict[str, str] = field(default_factory=dict)
    # What a route's pattern captured of the path (`routes_register`).
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiResponse:
    status: int = 200
    body: bytes | AsyncIterator[bytes] = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: dict, status: int = 200) -> ApiResponse:
        return cls(status=status, body=_json_encode(data).encode())

    @classmethod
    def error(cls, error: ApiError, flavour: str = "openai") -> ApiResponse:
        body = error.anthropic_body() if flavour == "anthropic" else error.openai_body()
        response = cls.json(body, status=error.status)
        response.headers.update(error.headers)
        if error.retry_after is not None:
            response.headers["retry-after"] = str(max(1, round(error.retry_after)))
        return response

    @classmethod
    def sse(cls, events: AsyncIterator[bytes]) -> ApiResponse:
        return cls(
            body=events,
            content_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )


def _authenticated(headers):
    key = api_key_authenticate(api_key_from_headers(headers))
    api_key_touch(key=key)
    return key


async def authenticate(headers):
    return await db_call(_authenticated, headers)


async def _admit(request: ApiRequest, schema):
    key = await authenticate(request.headers)
    if schema is None:
        return key, None
    body = schemas.parse(schema, request.body)
    api_key_model_check(key, body.model)
    return key, body


async def _parse_for_completion(request: ApiRequest, schema):
    """The parsed body of a completion request. Authentication happens later, on the
    pipeline's own database hop (see `_principal`); a body that does not parse is reported
    only to a caller with a valid key, as before."""
    try:
        return schemas.parse(schema, request.body)
    except ApiError:
        await authenticate(request.headers)
        raise


async def _files_read(request: ApiRequest, body) -> None:
    """Read the files a request sends inline (`file` / `input_file` parts), on a thread, for
    a caller with a valid key only: a file that cannot be read is refused before any call,
    and nobody makes the server read files without a key."""
    files = body.inline_files()
    if not files:
        return
    await authenticate(request.headers)

    def read_all():
        for file in files:
            file.read()

    await asyncio.to_thread(read_all)


def _principal(request: ApiRequest, body):
    def check():
        key = _authenticated(request.headers)
        api_key_model_check(key, body.model)
        return key.user, key.workspace, key.pk

    return check


def completion_stream(
    body,
    *,
    principal,
    request_id: str,
    source: str,
    reference: str | None = None,
    cache_control: str = "",
    messages: list | None = None,
):
    """The pipeline's stream for a completion request's body (/v1/chat/completions,
    /v1/messages, /v1/responses), whoever asks: the endpoint, or a batch's request
    (batches.runner). `messages`: the prompt, when it is more than the body's own."""
    return pipeline.stream(
        whole=not body.stream,
        principal=principal,
        model=body.model,
        messages=body.provider_messages() if messages is None else messages,
        **body.generation_options(),
        **body.sampling_hints(),
        source=source,
        reference=reference,
        request_id=request_id,
        cache=body.cache_policy(cache_control),
    )


def _endpoint_stream(request: ApiRequest, body):
    """`completion_stream` for a request to the endpoint itself."""
    return completion_stream(
        body,
        principal=_principal(request, body),
        request_id=request.request_id,
        source="api",
        cache_control=request.headers.get("cache-control", ""),
    )


def chat_completion_object(
    *, completion_id: str, created: int, model: str, text: str, finish: str, outcome
) -> dict:
    """A non-streaming chat completion, as OpenAI answers it."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": _FINISH_OPENAI.get(finish, "stop"),
                "logprobs": None,
            }
        ],
        "usage": _usage_openai(outcome),
    }


def _cache_headers(response: ApiResponse, stream) -> ApiResponse:
    """`x-cache: hit` (with the answer's `age` in seconds) or `miss`, on the answers of
    requests that use the response cache."""
    if stream.cache_policy is not None:
        age = stream.cache_age
        if age is None:
            response.headers["x-cache"] = "miss"
        else:
            response.headers.update({"x-cache": "hit", "age": str(age)})
    return response


async def _first_event(stream):
    """Pull the first event before answering, so failures before the first token get a
    proper HTTP status instead of a broken stream."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def _relay(stream, first) -> AsyncIterator:
    """The stream's events, `first` included; ends the upstream call however it stops."""
    try:
        if first is not None:
            yield first
        async for event in stream:
            yield event
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()


def _sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {_json_encode(data)}\n\n".encode()


def _completion_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _usage_openai(outcome) -> dict:
    return {
        "prompt_tokens": outcome.input_tokens,
        "completion_tokens": outcome.output_tokens,
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
        "prompt_tokens_details": {"cached_tokens": outcome.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens},
    }


def _usage_anthropic(outcome) -> dict:
    """Anthropic counts the prompt tokens read from and written to its cache apart from
    `input_tokens`."""
    read, written = outcome.cache_read_tokens, outcome.cache_write_tokens
    hour = outcome.cache_write_1h_tokens
    return {
        "input_tokens": max(0, outcome.input_tokens - read - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": written - hour,
            "ephemeral_1h_input_tokens": hour,
        },
        "output_tokens": outcome.output_tokens,
    }


# --- OpenAI ------------------------------------------------------------------------------


async def chat_completions(request: ApiRequest) -> ApiResponse:
    body = await _parse_for_completion(request, schemas.ChatCompletionRequest)
    await _files_read(request, body)
    stream = _endpoint_stream(request, body)
    completion_id = _completion_id("chatcmpl-")
    created = int(time.time())
    if not body.stream:
        text, finish = await pipeline.stream_collect(stream)
        completion = ApiResponse.json(
            chat_completion_object(
                completion_id=completion_id,
                created=created,
                model=body.model,
                text=text,
                finish=finish,
                outcome=stream.outcome,
            )
        )
        return _cache_headers(completion, stream)

    first = await _first_event(stream)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    head = (
        f'{{"id":"{completion_id}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(body.model)},'
    )

    def chunk(delta: dict, finish_reason=None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return f'data: {head}"choices":[{_json_encode(choice)}]}}\n\n'.encode()

    # Per token only the text is encoded; the rest of the chunk is the same every time.
    text_head = f'data: {head}"choices":[{{"index":0,"delta":{{"content":'.encode()
    text_tail = b'},"finish_reason":null,"logprobs":null}]}\n\n'

    async def events():
        finish = "stop"
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for event in _relay(stream, first):
                if isinstance(event, TextDelta) and event.text:
                    yield text_head + json.dumps(event.text).encode() + text_tail
                elif isinstance(event, Finish):
                    finish = event.reason
        except GatewayError as exc:
            yield _sse(ApiError.from_gateway(exc).openai_body())
            return
        yield chunk({}, _FINISH_OPENAI.get(finish, "stop"))
        if include_usage and stream.outcome is not None:
            usage = json.dumps(_usage_openai(stream.outcome))
            yield f'data: {head}"choices":[],"usage":{usage}}}\n\n'.encode()
        yield b"data: [DONE]\n\n"

    return _cache_headers(ApiResponse.sse(events()), stream)


async def models(request: ApiRequest) -> ApiResponse:
    key, _ = await _admit(request, None)
    data = await db_call(api_models_for_key, key=key)
    return ApiResponse.json({"object": "list", "data": data})


async def model(request: ApiRequest) -> ApiResponse:
    key, _ = await _admit(request, None)
    model_id = request.path.removeprefix(MODEL_PATH_PREFIX)
    data = await db_call(api_model_for_key, key=key, model_id=model_id)
    if data is None:
        # A model outside the key's allow-list is as unknown as one that does not exist,
        # as in the list.
        raise ApiError(
            404,
            "model_not_found",
            f"The model '{model_id}' does not exist or this API key may not use it.",
            param="model",
        )
    return ApiResponse.json(data)


async def embeddings(request: ApiRequest) -> ApiResponse:
    key, body = await _admit(request, schemas.EmbeddingsRequest)
    # `embed` resolves its candidates through `database_sync_to_async`: without a context of
    # its own, every request's calls would queue on the process's one shared sync thread.
    async with ThreadSensitiveContext():
        result = await embeddings_embed(
            user=key.user,
            workspace=key.workspace,
            model=body.model,
            inputs=body.inputs,
            api_key_id=key.pk,
            source="api",
            request_id=request.request_id,
        )
    return ApiResponse.json(embeddings_object(body, result))


def embeddings_object(body: schemas.EmbeddingsRequest, result) -> dict:
    """An embeddings response body, as OpenAI's (also a batch's answer: batches.runner)."""
    data = []
    for index, vector in enumerate(result.vectors):
        if body.encoding_format == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens},
    }


# --- Anthropic ---------------------------------------------------------------------------

# A text delta event up to its text: per token only the text is encoded.
_TEXT_DELTA_HEAD = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)


async def messages(request: ApiRequest) -> ApiResponse:
    body = await _parse_for_completion(request, schemas.AnthropicMessagesRequest)
    stream = _endpoint_stream(request, body)
    message_id = _completion_id("msg_")
    if not body.stream:
        text, finish = await pipeline.stream_collect(stream)
        outcome = stream.outcome
        message = ApiResponse.json(
            {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": body.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": _FINISH_ANTHROPIC.get(finish, "end_turn"),
                "stop_sequence": None,
                "usage": _usage_anthropic(outcome),
            }
        )
        return _cache_headers(message, stream)

    first = await _first_event(stream)

    async def events():
        finish = "stop"
        try:
            yield _sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": body.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 0, "output_tokens": 0},
                    },
                },
                "message_start",
            )
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            async for event in _relay(stream, first):
                if isinstance(event, TextDelta) and event.text:
                    yield _TEXT_DELTA_HEAD + json.dumps(event.text).encode() + b"}}\n\n"
                elif isinstance(event, Finish):
                    finish = event.reason
        except GatewayError as exc:
            yield _sse(ApiError.from_gateway(exc).anthropic_body(), "error")
            return
        outcome = stream.outcome
        yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        yield _sse(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _FINISH_ANTHROPIC.get(finish, "end_turn"),
                    "stop_sequence": None,
                },
                "usage": _usage_anthropic(outcome),
            },
            "message_delta",
        )
        yield _sse({"type": "message_stop"}, "message_stop")

    return _cache_headers(ApiResponse.sse(events()), stream)


# --- OpenAI Responses ----------------------------------------------------------------------

# Why an answer is incomplete, by the pipeline's finish reason; any other finish completes it.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _response_shell(
    body: schemas.ResponsesRequest, *, response_id: str, created: int, store: bool = False
) -> dict:
    """A /v1/responses response object as it starts: in progress, no output yet. What the
    request asked is said back, as OpenAI does."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": bool(body.background),
        "error": None,
        "incomplete_details": None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "metadata": body.metadata or {},
        "model": body.model,
        "output": [],
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": body.reasoning.effort if body.reasoning else None, "summary": None},
        "store": store,
        "temperature": body.temperature,
        "text": {"format": {"type": "text"}},
        "tool_choice": body.tool_choice or "auto",
        "tools": [],
        "top_p": body.top_p,
        "truncation": "disabled",
        "usage": None,
        "user": body.user,
    }


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(
    body: schemas.ResponsesRequest,
    *,
    response_id: str,
    message_id: str,
    created: int,
    text: str,
    finish: str,
    outcome,
    store: bool = False,
) -> dict:
    """A finished /v1/responses response, as OpenAI answers it: the text in one output
    message; "incomplete" when the output limit (or a content filter) cut it."""
    incomplete = _INCOMPLETE.get(finish)
    status = "incomplete" if incomplete else "completed"
    return {
        **_response_shell(body, response_id=response_id, created=created, store=store),
        "status": status,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "output": [
            {
                "id": message_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [output_text(text)],
            }
        ],
        "usage": usage_with_details(
            outcome.input_tokens,
            outcome.output_tokens,
            cached_tokens=outcome.cache_read_tokens,
            reasoning_tokens=outcome.reasoning_tokens,
        ),
    }


def message_start_events(message_id: str) -> list[dict]:
    """A streamed response's answer message beginning (events without their numbers)."""
    item = {
        "id": message_id,
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    return [
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.content_part.added",
            "item_id": message_id,
            "output_index": 0,
            "content_index": 0,
            "part": output_text(""),
        },
    ]


def text_delta_event(message_id: str, delta: str) -> dict:
    """A piece of the answer's text (the endpoint's own stream encodes the same per token)."""
    return {
        "type": "response.output_text.delta",
        "item_id": message_id,
        "output_index": 0,
        "content_index": 0,
        "logprobs": [],
        "delta": delta,
    }


def message_end_events(message: dict) -> list[dict]:
    """A streamed response's answer message ending, `message` as its output has it (events
    without their numbers)."""
    where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    part = message["content"][0]
    return [
        {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
    ]


def cancelled_object(answer: dict, text: str) -> dict:
    """A finished response object (`response_object`) as one stopped midway: cancelled,
    keeping what it had said, if anything."""
    [message] = answer["output"]
    message["status"] = "incomplete"
    return {
        **answer,
        "status": StoredResponse.Status.CANCELLED,
        "incomplete_details": None,
        "output": [message] if text else [],
    }


def usage_with_details(
    input_tokens: int, output_tokens: int, *, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict:
    """`usage` as OpenAI's Responses and Batch APIs give it: the cached and reasoning tokens
    are parts of the input and output totals."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


class _Remembered:
    """A principal check (`_principal`) that keeps what it found: whose answer to store."""

    def __init__(self, check):
        self._check = check
        self.found = None  # (user, workspace, api_key_id) once the pipeline admitted the call

    def __call__(self):
        self.found = self._check()
        return self.found


def _previous_get(key, body: schemas.ResponsesRequest):
    """The stored response a request follows (`previous_response_id`), or None. One its key's
    user did not store in its workspace is not found, as an id that does not exist."""
    if not body.previous_response_id:
        return None
    previous = stored_response_get(
        workspace_id=key.workspace_id, user_id=key.user_id, public_id=body.previous_response_id
    )
    if previous is None:
        raise ApiError(
            400,
            "previous_response_not_found",
            f"Previous response with id '{body.previous_response_id}' not found.",
            param="previous_response_id",
        )
    if previous.status in StoredResponse.RUNNING:
        raise ApiError(
            400,
            "previous_response_in_progress",
            f"Previous response with id '{body.previous_response_id}' is {previous.status}: "
            "follow it once it has finished.",
            param="previous_response_id",
        )
    return previous


def _caller_and_previous(request: ApiRequest, body: schemas.ResponsesRequest):
    """(the request's key, the stored response it follows or None), checked now, on a
    database thread."""
    key = _authenticated(request.headers)
    api_key_model_check(key, body.model)
    return key, _previous_get(key, body)


def _previous_read(request: ApiRequest, body: schemas.ResponsesRequest):
    """(the caller, the stored response it follows, that response's context) for a request
    with `previous_response_id`."""
    key, previous = _caller_and_previous(request, body)
    return (key.user, key.workspace, key.pk), previous, stored_response_context(previous)


def _background_queue(request: ApiRequest, body: schemas.ResponsesRequest) -> StoredResponse:
    """Keep a background response, queued for a worker (api.background)."""
    key, previous = _caller_and_previous(request, body)
    shell = _response_shell(
        body, response_id=_completion_id("resp_"), created=int(time.time()), store=True
    )
    shell["status"] = StoredResponse.Status.QUEUED
    with transaction.atomic():
        return stored_response_create(
            public_id=shell["id"],
            workspace_id=key.workspace_id,
            user_id=key.user_id,
            api_key_id=key.pk,
            previous=previous,
            input_items=body.input_items(lambda: _completion_id("msg_")),
            body=shell,
            request=body.model_dump(mode="json", exclude_none=True),
        )


def _storing(body: schemas.ResponsesRequest) -> bool:
    return body.store is not False and settings.API_RESPONSES_RETENTION_DAYS > 0


async def _stored(answer: dict, *, principal: _Remembered, previous, input_items) -> dict:
    """The finished `answer`, kept for its user when it asked to be; said unstored when it
    could not be kept (the database away): its answer is not lost for that."""
    if not answer["store"]:
        return answer
    try:
        user, workspace, api_key_id = principal.found
        await db_call(
            stored_response_create,
            public_id=answer["id"],
            workspace_id=workspace.pk,
            user_id=user.pk,
            api_key_id=api_key_id,
            previous=previous,
            input_items=input_items,
            body=answer,
        )
    except Exception:
        logger.exception("storing response %s failed", answer["id"])
        return {**answer, "store": False}
    return answer


async def responses(request: ApiRequest) -> ApiResponse:
    body = await _parse_for_completion(request, schemas.ResponsesRequest)
    await _files_read(request, body)
    if body.background:
        if settings.API_RESPONSES_RETENTION_DAYS <= 0:
            await authenticate(request.headers)
            raise ApiError(
                400,
                "unsupported_parameter",
                "A background response is kept to be read back, and this server keeps none: "
                "leave out background.",
                param="background",
            )
        queued = await db_call(_background_queue, request, body)
        if body.stream:
            return ApiResponse.sse(_followed(queued.pk, after=-1))
        return ApiResponse.json(queued.body)
    previous, context = None, []
    if body.previous_response_id:
        found, previous, context = await db_call(_previous_read, request, body)
        principal = _Remembered(lambda: found)
    else:
        principal = _Remembered(_principal(request, body))
    if any(part.get("type") == "input_file" for part in _parts_of(context)):
        # The files of the responses it follows are read again: on a thread.
        messages = await asyncio.to_thread(body.provider_messages, context)
    else:
        messages = body.provider_messages(context)
    stream = completion_stream(
        body,
        principal=principal,
        request_id=request.request_id,
        source="api",
        cache_control=request.headers.get("cache-control", ""),
        messages=messages,
    )
    store = _storing(body)
    ids = {
        "response_id": _completion_id("resp_"),
        "message_id": _completion_id("msg_"),
        "created": int(time.time()),
    }
    items = body.input_items(lambda: _completion_id("msg_")) if store else []
    if not body.stream:
        text, finish = await pipeline.stream_collect(stream)
        answer = response_object(
            body, **ids, text=text, finish=finish, outcome=stream.outcome, store=store
        )
        answer = await _stored(answer, principal=principal, previous=previous, input_items=items)
        return _cache_headers(ApiResponse.json(answer), stream)

    first = await _first_event(stream)
    numbers = itertools.count()
    # Per token only the text and the event's number are encoded (text_delta_event's shape).
    text_head = (
        "event: response.output_text.delta\n"
        f'data: {{"type":"response.output_text.delta","item_id":"{ids["message_id"]}",'
        '"output_index":0,"content_index":0,"logprobs":[],"delta":'
    ).encode()

    def numbered(data: dict) -> bytes:
        return _sse({**data, "sequence_number": next(numbers)}, data["type"])

    def event(kind: str, **fields) -> bytes:
        return numbered({"type": kind, **fields})

    async def events():
        shell = _response_shell(
            body, response_id=ids["response_id"], created=ids["created"], store=store
        )
        parts, finish, ended = [], "stop", False
        try:
            yield event("response.created", response=shell)
            yield event("response.in_progress", response=shell)
            for data in message_start_events(ids["message_id"]):
                yield numbered(data)
            async for streamed in _relay(stream, first):
                if isinstance(streamed, TextDelta) and streamed.text:
                    parts.append(streamed.text)
                    number = str(next(numbers)).encode()
                    yield (
                        text_head
                        + json.dumps(streamed.text).encode()
                        + b',"sequence_number":'
                        + number
                        + b"}\n\n"
                    )
                elif isinstance(streamed, Finish):
                    finish = streamed.reason
            ended = True
        except GatewayError as exc:
            ended = True
            error = ApiError.from_gateway(exc)
            failed = {**shell, "status": "failed"}
            failed["error"] = {"code": error.code, "message": error.message}
            # Kept as a background response that fails is: read back, it says why. Its
            # partial text is not part of it (nor of the turns of a response following it).
            failed = await _stored(
                failed, principal=principal, previous=previous, input_items=items
            )
            yield event("error", code=error.code, message=error.message, param=error.param)
            yield event("response.failed", response=failed)
            return
        finally:
            if not ended and store:
                # The client went away mid-answer (the upstream call is closed, billed as
                # client_gone): kept cancelled with the text said so far, so that the id it
                # was given can be read back and followed.
                with contextlib.suppress(Exception):
                    await stream.aclose()
                if stream.outcome is not None:
                    said = "".join(parts)
                    gone = response_object(
                        body, **ids, text=said, finish=finish, outcome=stream.outcome, store=True
                    )
                    await _stored(
                        cancelled_object(gone, said),
                        principal=principal,
                        previous=previous,
                        input_items=items,
                    )
        text = "".join(parts)
        done = response_object(
            body, **ids, text=text, finish=finish, outcome=stream.outcome, store=store
        )
        # Kept before the client is told the answer is done: a request that follows it at
        # once finds it.
        done = await _stored(done, principal=principal, previous=previous, input_items=items)
        [message] = done["output"]
        for data in message_end_events(message):
            yield numbered(data)
        yield event(f"response.{done['status']}", response=done)

    return _cache_headers(ApiResponse.sse(events()), stream)


def _parts_of(items: list[dict]):
    for item in items:
        if isinstance(item.get("content"), list):
            yield from item["content"]


async def _stored_response_for(request: ApiRequest):
    key = await authenticate(request.headers)
    public_id = request.params["response_id"]
    response = await db_call(
        stored_response_get, workspace_id=key.workspace_id, user_id=key.user_id, public_id=public_id
    )
    if response is None:
        raise ApiError(
            404, "not_found", f"Response with id '{public_id}' not found.", param="response_id"
        )
    return response


async def response_retrieve(request: ApiRequest) -> ApiResponse:
    """A stored response; with `stream=true`, a background response's stream from its start
    (or after the event `starting_after`), followed until it ends."""
    response = await _stored_response_for(request)
    stream = request.query.get("stream", "false").lower()
    if stream not in ("true", "false"):
        raise ApiError(400, "invalid_request", "'stream' must be true or false.", param="stream")
    if stream == "false":
        return ApiResponse.json(response.body)
    if not response.body.get("background"):
        raise ApiError(
            400,
            "invalid_request",
            f"Response {response.public_id} was not made in the background: only a background "
            "response can be streamed back.",
            param="stream",
        )
    after = request.query.get("starting_after", "-1")
    try:
        after = int(after)
    except ValueError:
        raise ApiError(
            400,
            "invalid_request",
            "'starting_after' must be an event's sequence_number.",
            param="starting_after",
        ) from None
    return ApiResponse.sse(_followed(response.pk, after=max(after, -1)))


# How often a reader following a background response looks for more: every FOLLOW_SECONDS
# while its text comes (the worker writes it every 0.2 s), less often, up to FOLLOW_QUIET,
# while nothing does (queued, or a slow model): a reader costs the database two short
# queries a look.
FOLLOW_SECONDS = 0.1
FOLLOW_QUIET = 1.0
# A stream with nothing to say (its response queued, say) sends an SSE comment this often,
# so that proxies between it and its reader do not close it as idle.
KEEPALIVE_SECONDS = 15.0


async def _followed(response_pk: int, *, after: int) -> AsyncIterator[bytes]:
    """A background response's stream (its events numbered above `after`), as its worker
    writes it, until it ends: then its closing events, said from its final body."""
    said_at, wait = time.monotonic(), FOLLOW_SECONDS
    while True:
        response, events, last = await db_call(
            stored_response_progress, response_id=response_pk, after=after
        )
        for data in events:
            yield _sse(data, data["type"])
            after = data["sequence_number"]
        if events:
            said_at = time.monotonic()
        elif time.monotonic() - said_at >= KEEPALIVE_SECONDS:
            yield b": keepalive\n\n"
            said_at = time.monotonic()
        if response is None:
            gone = {"code": "not_found", "message": "The response was deleted.", "param": None}
            yield _sse({"type": "error", **gone, "sequence_number": after + 1}, "error")
            return
        if last is not None:
            for data in closing_events(response.body, sequence=last + 1):
                if data["sequence_number"] > after:
                    yield _sse(data, data["type"])
            return
        if events:
            wait = FOLLOW_SECONDS
        else:
            await asyncio.sleep(wait)
            wait = min(wait * 2, FOLLOW_QUIET)


def closing_events(body: dict, *, sequence: int) -> list[dict]:
    """The last events of a background response's stream, from its final body, numbered from
    `sequence`: its message's end, if it has one, then `response.<status>`."""
    events = [event for message in body.get("output", ()) for event in message_end_events(message)]
    events.append({"type": f"response.{body['status']}", "response": body})
    for number, event in enumerate(events, sequence):
        event["sequence_number"] = number
    return events


async def response_cancel(request: ApiRequest) -> ApiResponse:
    response = await _stored_response_for(request)
    return ApiResponse.json(await db_call(stored_response_cancel, response=response))


async def response_delete(request: ApiRequest) -> ApiResponse:
    response = await _stored_response_for(request)
    await db_call(stored_response_delete, response=response)
    return ApiResponse.json({"id": response.public_id, "object": "response", "deleted": True})


async def response_input_items(request: ApiRequest) -> ApiResponse:
    """A stored response's input (the turns of the responses it follows included), in pages:
    `limit` (1 to 100, 20), `order` (`desc`, the newest first, or `asc`), `after` (an item
    id)."""
    items = await db_call(stored_response_input, await _stored_response_for(request))
    order = request.query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise ApiError(400, "invalid_request", "'order' must be 'asc' or 'desc'.", param="order")
    if order == "desc":
        items = items[::-1]
    after = request.query.get("after")
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise ApiError(
                400, "invalid_request", f"No input item with the id '{after}'.", param="after"
            )
        items = items[ids.index(after) + 1 :]
    limit = list_limit(request, default=20, most=100)
    return list_answer(items[:limit], len(items) > limit, lambda item: item)


def list_answer(objects: list, has_more: bool, describe) -> ApiResponse:
    """A page of a listing, as OpenAI answers it."""
    data = [describe(item) for item in objects]
    return ApiResponse.json(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


def list_limit(request: ApiRequest, default: int, most: int) -> int:
    """A listing's `limit` query parameter, from 1 to `most`."""
    raw = request.query.get("limit", "")
    if not raw:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= most:
        raise ApiError(400, "invalid_request", f"'limit' must be from 1 to {most}.", param="limit")
    return limit


async def openapi(request: ApiRequest) -> ApiResponse:
    from .openapi import openapi_document

    return ApiResponse.json(openapi_document())


@dataclass(frozen=True)
class Route:
    handler: Callable[[ApiRequest], Awaitable[ApiResponse]]
    flavour: str  # the error shape: "openai" or "anthropic"
    methods: tuple[str, ...]
    # The largest body it reads (None: MAX_BODY_BYTES).
    max_body: Callable[[], int] | None = None


ROUTES = {
    "/v1/chat/completions": Route(chat_completions, "openai", ("POST",)),
    "/v1/models": Route(models, "openai", ("GET",)),
    "/v1/embeddings": Route(embeddings, "openai", ("POST",)),
    "/v1/messages": Route(messages, "anthropic", ("POST",)),
    "/v1/responses": Route(responses, "openai", ("POST",)),
    "/v1/openapi.json": Route(openapi, "openai", ("GET",)),
}
# Model ids may hold "/" (the path arrives decoded), so the rest of the path is the id.
MODEL_PATH_PREFIX = "/v1/models/"
_MODEL_ROUTE = Route(model, "openai", ("GET",))
# Routes with parts of the path in them (`/v1/batches/{batch_id}`): (pattern, methods' routes).
_PATTERNS: list[tuple[re.Pattern, dict[str, Route]]] = []


def routes_register(routes: dict[str, dict[str, Route]]) -> None:
    """Serve more of /v1 from an app above this one (batches/): {path: {method: route}},
    where a path may name parts as `{name}` (any characters but "/"), which the handler finds
    in `request.params`. One path may have a different route for each method."""
    for path, by_method in routes.items():
        pattern = re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
        if all(known.pattern != pattern.pattern for known, _ in _PATTERNS):
            _PATTERNS.append((pattern, by_method))


def route_match(path: str, method: str) -> tuple[Route | None, dict[str, str]]:
    """The route serving `method` on `path` and what its pattern captured. A known path with no
    route for this method gives a route whose `methods` say which there are."""
    if path.startswith(MODEL_PATH_PREFIX) and len(path) > len(MODEL_PATH_PREFIX):
        return _MODEL_ROUTE, {}
    route = ROUTES.get(path)
    if route is not None:
        return route, {}
    for pattern, by_method in _PATTERNS:
        matched = pattern.match(path)
        if matched:
            route = by_method.get(method)
            if route is None:
                any_route = next(iter(by_method.values()))
                route = Route(any_route.handler, any_route.flavour, tuple(by_method))
            return route, matched.groupdict()
    return None, {}


MAX_BODY_BYTES = getattr(settings, "API_MAX_BODY_BYTES", 8 * 1024 * 1024)


routes_register(
    {
        "/v1/responses/{response_id}": {
            "GET": Route(response_retrieve, "openai", ("GET",)),
            "DELETE": Route(response_delete, "openai", ("DELETE",)),
        },
        "/v1/responses/{response_id}/input_items": {
            "GET": Route(response_input_items, "openai", ("GET",))
        },
        "/v1/responses/{response_id}/cancel": {"POST": Route(response_cancel, "openai", ("POST",))},
    }
)
