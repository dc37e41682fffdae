"""The OpenAI- and Anthropic-compatible /v1 API: another caller of the one pipeline, so
quotas, rate limits, fallback, usage and cost apply exactly as in the chat."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from gateway import pipeline
from gateway.errors import GatewayError
from providers.types import Finish, TextDelta

from . import schemas
from .auth import api_key_authenticate, api_key_from_headers
from .errors import ApiError
from .selectors import api_models_for_key
from .services import api_key_touch

MAX_BODY_BYTES = getattr(settings, "API_MAX_BODY_BYTES", 8 * 1024 * 1024)
_FINISH_OPENAI = {"stop": "stop", "length": "length", "content_filter": "content_filter",
                  "tool_calls": "tool_calls", "error": "stop", "cancelled": "stop"}
_FINISH_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal",
                     "tool_calls": "tool_use", "error": "end_turn", "cancelled": "end_turn"}


def _authenticated(request):
    key = api_key_authenticate(api_key_from_headers(request.headers))
    api_key_touch(key=key)
    return key


async def _admit(request, schema, *, method: str = "POST"):
    if request.method != method:
        raise ApiError(405, "method_not_allowed", f"Use {method} for this endpoint.")
    key = await sync_to_async(_authenticated)(request)
    if method != "POST":
        return key, None
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "request_too_large", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    body = schemas.parse(schema, request.body)
    if not key.allows_model(body.model):
        raise ApiError(403, "model_not_allowed", f"This API key may not use the model '{body.model}'.")
    return key, body


def _errors(flavour: str):
    """Turn ApiError/GatewayError raised by a view into the flavour's error response."""

    def decorate(view):
        async def wrapped(request, *args, **kwargs):
            try:
                return await view(request, *args, **kwargs)
            except GatewayError as exc:
                return ApiError.from_gateway(exc).response(flavour=flavour)
            except ApiError as exc:
                return exc.response(flavour=flavour)

        wrapped.__name__ = view.__name__
        return csrf_exempt(wrapped)

    return decorate


def _pipeline_stream(request, key, body, *, max_tokens, temperature, top_p, stop):
    return pipeline.stream(
        user=key.user, workspace=key.workspace, model=body.model,
        messages=body.provider_messages(), max_tokens=max_tokens, temperature=temperature,
        top_p=top_p, stop=stop, api_key_id=key.pk, source="api",
        request_id=getattr(request, "id", ""),
    )


async def _first_event(stream):
    """Pull the first event before answering, so failures before the first token get a
    proper HTTP status instead of a broken stream."""
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


def _sse(data: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _usage_openai(outcome) -> dict:
    return {
        "prompt_tokens": outcome.input_tokens,
        "completion_tokens": outcome.output_tokens,
        "total_tokens": outcome.input_tokens + outcome.output_tokens,
    }


# --- OpenAI ------------------------------------------------------------------------------


@_errors("openai")
async def chat_completions(request):
    key, body = await _admit(request, schemas.ChatCompletionRequest)
    stream = _pipeline_stream(
        request, key, body, max_tokens=body.output_limit, temperature=body.temperature,
        top_p=body.top_p, stop=body.stop_sequences,
    )
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        parts, finish = [], "stop"
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Finish):
                    finish = event.reason
        finally:
            await stream.aclose()
        return JsonResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
            "choices": [{
                "index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                "finish_reason": _FINISH_OPENAI.get(finish, "stop"), "logprobs": None,
            }],
            "usage": _usage_openai(stream.outcome),
        })

    first = await _first_event(stream)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict, finish_reason=None) -> bytes:
        return _sse({
            "id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        })

    async def events():
        finish = "stop"
        try:
            yield chunk({"role": "assistant", "content": ""})
            pending = [first] if first is not None else []
            while True:
                event = pending.pop() if pending else await stream.__anext__()
                if isinstance(event, TextDelta) and event.text:
                    yield chunk({"content": event.text})
                elif isinstance(event, Finish):
                    finish = event.reason
        except StopAsyncIteration:
            yield chunk({}, _FINISH_OPENAI.get(finish, "stop"))
            if include_usage and stream.outcome is not None:
                yield _sse({
                    "id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": body.model, "choices": [], "usage": _usage_openai(stream.outcome),
                })
            yield b"data: [DONE]\n\n"
        except GatewayError as exc:
            yield _sse(ApiError.from_gateway(exc).openai_body())
        finally:
            # Client gone (cancelled) or finished: either way the upstream call ends here.
            with contextlib.suppress(Exception):
                await stream.aclose()

    return _streaming(events())


def _streaming(iterator) -> StreamingHttpResponse:
    response = StreamingHttpResponse(iterator, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@_errors("openai")
async def models(request):
    key, _ = await _admit(request, None, method="GET")
    data = await sync_to_async(api_models_for_key)(key=key)
    return JsonResponse({"object": "list", "data": data})


@_errors("openai")
async def embeddings(request):
    key, body = await _admit(request, schemas.EmbeddingsRequest)
    result = await pipeline.embed(
        user=key.user, workspace=key.workspace, model=body.model, inputs=body.inputs,
        api_key_id=key.pk, source="api", request_id=getattr(request, "id", ""),
    )
    data = []
    for index, vector in enumerate(result.vectors):
        if body.encoding_format == "base64":
            import base64
            import struct

            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return JsonResponse({
        "object": "list", "data": data, "model": body.model,
        "usage": {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens},
    })


# --- Anthropic ---------------------------------------------------------------------------


@_errors("anthropic")
async def messages(request):
    key, body = await _admit(request, schemas.AnthropicMessagesRequest)
    stream = _pipeline_stream(
        request, key, body, max_tokens=body.max_tokens, temperature=body.temperature,
        top_p=body.top_p, stop=tuple(body.stop_sequences or ()),
    )
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    if not body.stream:
        parts, finish = [], "stop"
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Finish):
                    finish = event.reason
        finally:
            await stream.aclose()
        outcome = stream.outcome
        return JsonResponse({
            "id": message_id, "type": "message", "role": "assistant", "model": body.model,
            "content": [{"type": "text", "text": "".join(parts)}],
            "stop_reason": _FINISH_ANTHROPIC.get(finish, "end_turn"), "stop_sequence": None,
            "usage": {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens},
        })

    first = await _first_event(stream)

    async def events():
        finish = "stop"
        try:
            yield _sse({"type": "message_start", "message": {
                "id": message_id, "type": "message", "role": "assistant", "model": body.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}, "message_start")
            yield _sse({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}, "content_block_start")
            pending = [first] if first is not None else []
            while True:
                event = pending.pop() if pending else await stream.__anext__()
                if isinstance(event, TextDelta) and event.text:
                    yield _sse({"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": event.text}}, "content_block_delta")
                elif isinstance(event, Finish):
                    finish = event.reason
        except StopAsyncIteration:
            outcome = stream.outcome
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield _sse({"type": "message_delta",
                        "delta": {"stop_reason": _FINISH_ANTHROPIC.get(finish, "end_turn"), "stop_sequence": None},
                        "usage": {"input_tokens": outcome.input_tokens, "output_tokens": outcome.output_tokens}},
                       "message_delta")
            yield _sse({"type": "message_stop"}, "message_stop")
        except GatewayError as exc:
            yield _sse(ApiError.from_gateway(exc).anthropic_body(), "error")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    return _streaming(events())


def openapi(request):
    from .openapi import openapi_document

    return JsonResponse(openapi_document())


def not_found(request, path=""):
    return ApiError(404, "not_found", f"Unknown endpoint /v1/{path}.").response()


__all__ = ["chat_completions", "models", "embeddings", "messages", "HttpResponse"]
