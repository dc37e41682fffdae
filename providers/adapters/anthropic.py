"""Anthropic messages (/v1/messages).

Headers `x-api-key` and `anthropic-version`; the system prompt is a top-level field. Streaming
SSE: message_start (input usage), content_block_start, content_block_delta/text_delta,
content_block_stop, message_delta (stop reason, output usage), message_stop, ping, error.
Images: content blocks of type `image` with a base64 or url source.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from providers.types import (
    ChatRequest,
    Completion,
    Finish,
    Message,
    ModelInfo,
    ProviderContentFiltered,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
    cache_longest,
)

from .base import Adapter, cut_off, json_loads, malformed, sse_events, token_count
from .images import data_url_split

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_read(raw: dict) -> Usage:
    """Anthropic's `usage`: its `input_tokens` leaves out the prompt tokens read from the
    cache (`cache_read_input_tokens`) and written to it (`cache_creation_input_tokens`, of
    which `cache_creation.ephemeral_1h_input_tokens` kept an hour); ours counts them all."""
    read = token_count(raw, "cache_read_input_tokens")
    written = token_count(raw, "cache_creation_input_tokens")
    return Usage(
        input_tokens=token_count(raw, "input_tokens") + read + written,
        output_tokens=token_count(raw, "output_tokens"),
        cache_read_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=min(
            token_count(raw, "cache_creation", "ephemeral_1h_input_tokens"), written
        ),
    )


def cache_control(ttl: str) -> dict:
    """The breakpoint marker: Anthropic's default lifetime (5 minutes) needs no `ttl`."""
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}


def content_payload(message: Message):
    content = _content_payload(message)
    if not message.cache:
        return content
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    content[-1]["cache_control"] = cache_control(message.cache)
    return content


def _content_payload(message: Message):
    if not message.images:
        return message.content
    blocks: list[dict] = []
    for image in message.images:
        split = data_url_split(image)
        if split:
            source = {"type": "base64", "media_type": split[0], "data": split[1]}
        else:
            source = {"type": "url", "url": image.url}
        blocks.append({"type": "image", "source": source})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return blocks


class AnthropicAdapter(Adapter):
    kind = "anthropic"
    label = "Anthropic"
    default_base_url = "https://api.anthropic.com"
    price_provider_id = "anthropic"
    temperature_range = (0.0, 1.0)
    # Of the sampling hints, Anthropic's API has top_k and the end-user id (metadata.user_id,
    # sent in `body`); it has no seed, penalties, logit bias or reasoning effort.
    sampling_fields = {"top_k": "top_k"}

    def headers(self, target: Target) -> dict[str, str]:
        return {"x-api-key": target.api_key, "anthropic-version": API_VERSION}

    def body(self, request: ChatRequest, *, stream: bool) -> dict:
        systems = [m for m in request.messages if m.role == "system"]
        system: str | list = "\n\n".join(m.content for m in systems)
        ttl = cache_longest(m.cache for m in systems)
        if system and ttl:  # one block: the breakpoint after the whole system prompt
            system = [{"type": "text", "text": system, "cache_control": cache_control(ttl)}]
        body: dict = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": m.role, "content": content_payload(m)}
                for m in request.messages
                if m.role != "system"
            ],
            "stream": stream,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        body.update(self.sampling_hints_sent(request))
        if request.end_user_id is not None:  # the one hint it takes nested
            body["metadata"] = {"user_id": request.end_user_id}
        body.update(request.extra.get("anthropic", {}))
        return body

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        body = self.body(request, stream=True)
        async with self.open_stream(target, "POST", "/v1/messages", json_body=body) as resp:
            reported: dict = {}
            stop_reason: str | None = None
            async with self._mapped_transport_errors():
                async for _name, data in sse_events(resp):
                    event = json_loads(data)
                    if not isinstance(event, dict):
                        raise malformed()
                    kind = event.get("type")
                    if kind == "error":
                        raise self.error_for(0, {}, event, target)
                    if kind == "message_start":
                        usage = (event.get("message") or {}).get("usage")
                        if isinstance(usage, dict):
                            reported.update(usage)
                    elif kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        if delta.get("type") == "text_delta" and delta.get("text"):
                            yield TextDelta(delta["text"])
                    elif kind == "message_delta":
                        stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                        usage = event.get("usage")
                        if isinstance(usage, dict):
                            # Running totals; the prompt's counts only when given (not 0).
                            reported.update(
                                (key, value)
                                for key, value in usage.items()
                                if value or key == "output_tokens"
                            )
                    elif kind == "message_stop":
                        reason = STOP_REASONS.get(stop_reason or "end_turn", "stop")
                        if reason == "content_filter":
                            raise ProviderContentFiltered()
                        if reported:
                            yield usage_read(reported)
                        yield Finish(reason)
                        return
            raise cut_off()

    async def complete(self, target: Target, request: ChatRequest) -> Completion:
        data = await self.request_json(
            target, "POST", "/v1/messages", json_body=self.body(request, stream=False)
        )
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise malformed()
        text = "".join(
            block.get("text", "") for block in data["content"] if block.get("type") == "text"
        )
        reason = STOP_REASONS.get(data.get("stop_reason") or "end_turn", "stop")
        if reason == "content_filter" and not text:
            raise ProviderContentFiltered()
        raw = data.get("usage")
        usage = usage_read(raw) if isinstance(raw, dict) and raw else None
        return Completion(text=text, finish_reason=reason, usage=usage)

    async def list_models(self, target: Target) -> list[ModelInfo]:
        data = await self.request_json(target, "GET", "/v1/models?limit=1000")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise malformed()
        return [
            ModelInfo(id=str(item["id"]), display_name=str(item.get("display_name") or ""))
            for item in data["data"]
            if isinstance(item, dict) and item.get("id")
        ]
