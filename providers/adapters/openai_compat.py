"""OpenAI chat completions, and every server speaking the same protocol.

Streaming: SSE `data:` chunks ending with `data: [DONE]`; usage arrives in a final chunk with
empty `choices` when `stream_options.include_usage` is set. Models: GET {base}/models.
Embeddings: POST {base}/embeddings. Images: content parts of type `image_url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from providers.types import (
    ChatRequest,
    Completion,
    Finish,
    Message,
    ModelInfo,
    ProviderContentFiltered,
    ProviderError,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
)

from .base import Adapter, cut_off, json_loads, malformed, sse_batches, token_count

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


@dataclass
class _StreamState:
    finish: str | None = None
    usage: Usage | None = None
    done: bool = False


# The sampling hints of `ChatRequest` an OpenAI-compatible service takes: {ChatRequest field:
# the service's own field}. A hint missing here is not sent to it (several of these services
# refuse a field they do not know, e.g. Mistral with 422 "Extra inputs are not permitted").
OPENAI_SAMPLING_FIELDS = {
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "logit_bias": "logit_bias",
    "reasoning_effort": "reasoning_effort",
    "end_user_id": "user",
}
PENALTIES = ("frequency_penalty", "presence_penalty")


def usage_read(raw: dict) -> Usage:
    """An OpenAI-style `usage` object. Cached prompt tokens are in
    `prompt_tokens_details.cached_tokens` (OpenAI, xAI, Groq…) or `prompt_cache_hit_tokens`
    (DeepSeek); reasoning tokens in `completion_tokens_details.reasoning_tokens`. Both are
    already counted in the prompt and completion totals."""
    input_tokens = token_count(raw, "prompt_tokens")
    output_tokens = token_count(raw, "completion_tokens")
    cached = token_count(raw, "prompt_tokens_details", "cached_tokens") or token_count(
        raw, "prompt_cache_hit_tokens"
    )
    reasoning = token_count(raw, "completion_tokens_details", "reasoning_tokens")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=min(cached, input_tokens),
        reasoning_tokens=min(reasoning, output_tokens),
    )


def _fields(*names: str, **renamed: str) -> dict[str, str]:
    """OpenAI's own fields for `names`, and `renamed` hints under the service's names."""
    return {**{name: OPENAI_SAMPLING_FIELDS.get(name, name) for name in names}, **renamed}


def message_payload(message: Message) -> dict:
    if not message.images:
        return {"role": message.role, "content": message.content}
    parts: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [{"type": "image_url", "image_url": {"url": image.url}} for image in message.images]
    return {"role": message.role, "content": parts}


class OpenAICompatibleAdapter(Adapter):
    kind = "openai_compatible"
    label = _("OpenAI-compatible (custom URL)")
    supports_embeddings = True
    needs_api_key = False  # local servers (vLLM, LM Studio) often take none
    # OpenAI's range, which Mistral, Groq, xAI, DeepSeek and OpenRouter take as well.
    temperature_range = (0.0, 2.0)
    # OpenAI's own; the kinds below that differ say so (docs/providers.md, "Sampling hints").
    # top_k is not part of OpenAI's API.
    sampling_fields = OPENAI_SAMPLING_FIELDS

    def headers(self, target: Target) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    def body(self, request: ChatRequest, *, stream: bool) -> dict:
        body: dict = {
            "model": request.model,
            "messages": [message_payload(m) for m in request.messages],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        body.update(self.sampling_hints_sent(request))
        body.update(request.extra.get("openai", {}))
        return body

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        body = self.body(request, stream=True)
        async with self.open_stream(target, "POST", "/chat/completions", json_body=body) as resp:
            state = _StreamState()
            async with self._mapped_transport_errors():
                async for events in sse_batches(resp):
                    # The text of the chunks that arrived together leaves as one delta.
                    texts: list[str] = []
                    try:
                        for _event, data in events:
                            if self._chunk_read(data, state, texts, target):
                                break
                    except ProviderError:
                        if texts:
                            yield TextDelta("".join(texts))
                        raise
                    if texts:
                        yield TextDelta("".join(texts))
                    if state.done:
                        if state.finish == "content_filter":
                            raise ProviderContentFiltered()
                        if state.usage:
                            yield state.usage
                        yield Finish(FINISH_REASONS.get(state.finish or "stop", "stop"))
                        return
            raise cut_off()

    def _chunk_read(self, data: str, state: _StreamState, texts: list[str], target) -> bool:
        """One `data:` payload of the stream into `state` and `texts`; True at `[DONE]`."""
        if data.strip() == "[DONE]":
            state.done = True
            return True
        chunk = json_loads(data)
        if not isinstance(chunk, dict):
            raise malformed()
        if "error" in chunk:
            raise self.error_for(0, {}, chunk, target)
        if chunk.get("usage"):
            state.usage = usage_read(chunk["usage"])
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                texts.append(text)
            if choice.get("finish_reason"):
                state.finish = choice["finish_reason"]
        return False

    async def complete(self, target: Target, request: ChatRequest):
        data = await self.request_json(
            target, "POST", "/chat/completions", json_body=self.body(request, stream=False)
        )
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            reason = FINISH_REASONS.get(choice.get("finish_reason") or "stop", "stop")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise malformed() from exc
        if reason == "content_filter" and not text:
            raise ProviderContentFiltered()
        raw_usage = data.get("usage") or None
        usage = usage_read(raw_usage) if isinstance(raw_usage, dict) else None
        return Completion(text=text, finish_reason=reason, usage=usage)

    async def list_models(self, target: Target) -> list[ModelInfo]:
        data = await self.request_json(target, "GET", "/models")
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise malformed()
        models = []
        for item in items:
            if isinstance(item, dict) and item.get("id"):
                window = item.get("context_length") or item.get("context_window")
                models.append(
                    ModelInfo(
                        id=str(item["id"]),
                        display_name=str(item.get("name") or ""),
                        context_window=int(window) if isinstance(window, int) else None,
                    )
                )
        return models

    async def embed(self, target: Target, model: str, inputs: list[str]):
        data = await self.request_json(
            target, "POST", "/embeddings", json_body={"model": model, "input": inputs}
        )
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [list(row["embedding"]) for row in rows]
        except (KeyError, TypeError) as exc:
            raise malformed() from exc
        tokens = int((data.get("usage") or {}).get("prompt_tokens") or 0)
        return vectors, tokens


def _kind(
    kind: str,
    label: str,
    base_url: str,
    price_id: str | None,
    *,
    embeddings=True,
    sampling_fields: dict[str, str] = OPENAI_SAMPLING_FIELDS,
):
    return type(
        f"{kind.title().replace('_', '')}Adapter",
        (OpenAICompatibleAdapter,),
        {
            "kind": kind,
            "label": label,
            "default_base_url": base_url,
            "price_provider_id": price_id,
            "needs_api_key": True,
            "supports_embeddings": embeddings,
            "sampling_fields": sampling_fields,
        },
    )


OpenAIAdapter = _kind("openai", "OpenAI", "https://api.openai.com/v1", "openai")
# Mistral refuses fields it does not know (422): its seed is `random_seed`; no logit_bias,
# no end-user id, no reasoning_effort.
MistralAdapter = _kind(
    "mistral",
    "Mistral",
    "https://api.mistral.ai/v1",
    "mistral",
    sampling_fields=_fields(*PENALTIES, seed="random_seed"),
)
# Groq answers 400 to logit_bias.
GroqAdapter = _kind(
    "groq",
    "Groq",
    "https://api.groq.com/openai/v1",
    "groq",
    embeddings=False,
    sampling_fields=_fields("seed", *PENALTIES, "reasoning_effort", "end_user_id"),
)
# Together takes top_k as well; it has no end-user id.
TogetherAdapter = _kind(
    "together",
    "Together",
    "https://api.together.xyz/v1",
    "together",
    sampling_fields=_fields("seed", *PENALTIES, "logit_bias", "reasoning_effort", "top_k"),
)
XAIAdapter = _kind("xai", "xAI (Grok)", "https://api.x.ai/v1", "x-ai", embeddings=False)
# OpenRouter takes OpenAI's and top_k.
OpenRouterAdapter = _kind(
    "openrouter",
    "OpenRouter",
    "https://openrouter.ai/api/v1",
    "openrouter",
    embeddings=False,
    sampling_fields=_fields(*OPENAI_SAMPLING_FIELDS, "top_k"),
)
# DeepSeek takes the two penalties only.
DeepSeekAdapter = _kind(
    "deepseek",
    "DeepSeek",
    "https://api.deepseek.com/v1",
    "deepseek",
    embeddings=False,
    sampling_fields=_fields(*PENALTIES),
)
# GitHub Models (Azure AI inference) refuses parameters outside its schema.
GitHubModelsAdapter = _kind(
    "github",
    "GitHub Models",
    "https://models.github.ai/inference",
    None,
    sampling_fields=_fields("seed", *PENALTIES),
)

ADAPTERS = [
    OpenAIAdapter,
    MistralAdapter,
    GroqAdapter,
    TogetherAdapter,
    XAIAdapter,
    OpenRouterAdapter,
    DeepSeekAdapter,
    GitHubModelsAdapter,
    OpenAICompatibleAdapter,
]
