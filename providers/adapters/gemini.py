"""Google Gemini (generateContent / streamGenerateContent?alt=sse).

Base URL includes the API version (…/v1beta). Header `x-goog-api-key` (never the `key` query
parameter, which would put the key into URLs and logs). Roles `user`/`model`, the system prompt
as `systemInstruction`, usage in `usageMetadata`. Images: `inline_data` for data URLs,
`file_data` for URLs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from providers.types import (
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    ProviderContentFiltered,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
)

from .base import Adapter, cut_off, json_loads, malformed, sse_events, token_count
from .images import data_url_split

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def _parts(message) -> list[dict]:
    parts: list[dict] = [{"text": message.content}] if message.content else []
    for image in message.images:
        split = data_url_split(image)
        if split:
            parts.append({"inline_data": {"mime_type": split[0], "data": split[1]}})
        else:
            parts.append({"file_data": {"mime_type": image.media_type, "file_uri": image.url}})
    return parts or [{"text": ""}]


def _usage(data: dict) -> Usage | None:
    meta = data.get("usageMetadata")
    if not meta or not isinstance(meta, dict):
        return None
    # The prompt's count includes its cached part; the thinking tokens are billed as output
    # but counted apart from the answer's.
    input_tokens = token_count(meta, "promptTokenCount")
    thoughts = token_count(meta, "thoughtsTokenCount")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=token_count(meta, "candidatesTokenCount") + thoughts,
        cache_read_tokens=min(token_count(meta, "cachedContentTokenCount"), input_tokens),
        reasoning_tokens=thoughts,
    )


class GeminiAdapter(Adapter):
    kind = "gemini"
    label = "Google Gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    price_provider_id = "google"
    supports_embeddings = True
    temperature_range = (0.0, 2.0)
    # In generationConfig. Gemini has no logit bias, no end-user id and no reasoning effort
    # (its thinking budget is another setting).
    sampling_fields = {
        "seed": "seed",
        "presence_penalty": "presencePenalty",
        "frequency_penalty": "frequencyPenalty",
        "top_k": "topK",
    }

    def headers(self, target: Target) -> dict[str, str]:
        return {"x-goog-api-key": target.api_key}

    def body(self, request: ChatRequest) -> dict:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": _parts(m)}
                for m in request.messages
                if m.role != "system"
            ]
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict = {}
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        config.update(self.sampling_hints_sent(request))
        if config:
            body["generationConfig"] = config
        body.update(request.extra.get("gemini", {}))
        return body

    def _model_path(self, model: str) -> str:
        return "/models/" + quote(model.removeprefix("models/"), safe="-._")

    def _chunk(self, data, target: Target) -> tuple[str, str | None, Usage | None]:
        if not isinstance(data, dict):
            raise malformed()
        if "error" in data:
            raise self.error_for(0, {}, data, target)
        if (data.get("promptFeedback") or {}).get("blockReason"):
            raise ProviderContentFiltered()
        text, finish = "", None
        for candidate in data.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                if part.get("text") and not part.get("thought"):
                    text += part["text"]
            finish = candidate.get("finishReason") or finish
        return text, finish, _usage(data)

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        path = self._model_path(request.model) + ":streamGenerateContent?alt=sse"
        async with self.open_stream(target, "POST", path, json_body=self.body(request)) as resp:
            finish: str | None = None
            usage: Usage | None = None
            async with self._mapped_transport_errors():
                async for _name, data in sse_events(resp):
                    text, chunk_finish, chunk_usage = self._chunk(json_loads(data), target)
                    if text:
                        yield TextDelta(text)
                    usage = chunk_usage or usage
                    finish = chunk_finish or finish
            # Gemini has no end marker: a stream that ended without a finish reason was cut off.
            if finish is None:
                raise cut_off()
            reason = FINISH_REASONS.get(finish, "stop")
            if reason == "content_filter":
                raise ProviderContentFiltered()
            if usage:
                yield usage
            yield Finish(reason)

    async def complete(self, target: Target, request: ChatRequest) -> Completion:
        path = self._model_path(request.model) + ":generateContent"
        data = await self.request_json(target, "POST", path, json_body=self.body(request))
        text, finish, usage = self._chunk(data, target)
        if finish is None:
            raise malformed()
        reason = FINISH_REASONS.get(finish, "stop")
        if reason == "content_filter" and not text:
            raise ProviderContentFiltered()
        return Completion(text=text, finish_reason=reason, usage=usage)

    async def list_models(self, target: Target) -> list[ModelInfo]:
        models: list[ModelInfo] = []
        page = ""
        for _page in range(20):
            data = await self.request_json(
                target,
                "GET",
                "/models?pageSize=1000" + (f"&pageToken={quote(page)}" if page else ""),
            )
            if not isinstance(data, dict):
                raise malformed()
            for item in data.get("models") or ():
                methods = item.get("supportedGenerationMethods") or ["generateContent"]
                if "generateContent" not in methods and "embedContent" not in methods:
                    continue
                models.append(
                    ModelInfo(
                        id=str(item.get("name", "")).removeprefix("models/"),
                        display_name=str(item.get("displayName") or ""),
                        context_window=item.get("inputTokenLimit"),
                    )
                )
            page = data.get("nextPageToken") or ""
            if not page:
                break
        return [m for m in models if m.id]

    async def embed(self, target: Target, model: str, inputs: list[str]):
        name = "models/" + model.removeprefix("models/")
        body = {
            "requests": [{"model": name, "content": {"parts": [{"text": text}]}} for text in inputs]
        }
        data = await self.request_json(
            target, "POST", self._model_path(model) + ":batchEmbedContents", json_body=body
        )
        try:
            vectors = [list(row["values"]) for row in data["embeddings"]]
        except (KeyError, TypeError) as exc:
            raise malformed() from exc
        # Gemini reports no token count for embeddings: estimate ~4 characters a token.
        return vectors, sum(max(1, len(text) // 4) for text in inputs)
