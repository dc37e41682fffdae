"""Ollama (/api/chat NDJSON, /api/tags, /api/embed). No API key by default; one is sent as a
bearer token when set (for Ollama behind an authenticating proxy). Images: base64 strings in
the message's `images` list (data URLs only: Ollama cannot fetch URLs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.utils.translation import gettext as _

from providers.types import (
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    ProviderBadRequest,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
)

from .base import Adapter, cut_off, json_loads, malformed
from .images import data_url_split

DONE_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def _message(message) -> dict:
    payload: dict = {"role": message.role, "content": message.content}
    if message.images:
        images = []
        for image in message.images:
            split = data_url_split(image)
            if split is None:
                raise ProviderBadRequest(_("This provider accepts only uploaded images."))
            images.append(split[1])
        payload["images"] = images
    return payload


class OllamaAdapter(Adapter):
    kind = "ollama"
    label = "Ollama"
    default_base_url = "http://localhost:11434"
    needs_api_key = False
    supports_embeddings = True
    temperature_range = None  # a model option: any value is passed to the model
    # Model options. Ollama has no logit bias, no end-user id and no reasoning effort.
    sampling_fields = {
        "seed": "seed",
        "top_k": "top_k",
        "presence_penalty": "presence_penalty",
        "frequency_penalty": "frequency_penalty",
    }

    def headers(self, target: Target) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    def body(self, request: ChatRequest, *, stream: bool) -> dict:
        options: dict = {}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.top_p is not None:
            options["top_p"] = request.top_p
        if request.stop:
            options["stop"] = list(request.stop)
        options.update(self.sampling_hints_sent(request))
        body: dict = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
            "stream": stream,
        }
        if options:
            body["options"] = options
        body.update(request.extra.get("ollama", {}))
        return body

    def _check(self, data, target: Target) -> dict:
        if not isinstance(data, dict):
            raise malformed()
        if data.get("error"):
            raise self.error_for(0, {}, data, target)
        return data

    def _final(self, data: dict) -> tuple[Usage | None, str]:
        usage = None
        if "prompt_eval_count" in data or "eval_count" in data:
            usage = Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))
        return usage, DONE_REASONS.get(data.get("done_reason") or "stop", "stop")

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        body = self.body(request, stream=True)
        async with self.open_stream(target, "POST", "/api/chat", json_body=body) as resp:
            async with self._mapped_transport_errors():
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    data = self._check(json_loads(line), target)
                    text = (data.get("message") or {}).get("content")
                    if text:
                        yield TextDelta(text)
                    if data.get("done"):
                        usage, reason = self._final(data)
                        if usage:
                            yield usage
                        yield Finish(reason)
                        return
            raise cut_off()

    async def complete(self, target: Target, request: ChatRequest) -> Completion:
        data = self._check(
            await self.request_json(
                target, "POST", "/api/chat", json_body=self.body(request, stream=False)
            ),
            target,
        )
        usage, reason = self._final(data)
        return Completion(
            text=(data.get("message") or {}).get("content") or "", finish_reason=reason, usage=usage
        )

    async def list_models(self, target: Target) -> list[ModelInfo]:
        data = self._check(await self.request_json(target, "GET", "/api/tags"), target)
        return [
            ModelInfo(id=str(item.get("model") or item.get("name")))
            for item in data.get("models") or ()
            if item.get("model") or item.get("name")
        ]

    async def embed(self, target: Target, model: str, inputs: list[str]):
        data = self._check(
            await self.request_json(
                target, "POST", "/api/embed", json_body={"model": model, "input": inputs}
            ),
            target,
        )
        try:
            vectors = [list(v) for v in data["embeddings"]]
        except (KeyError, TypeError) as exc:
            raise malformed() from exc
        return vectors, int(data.get("prompt_eval_count") or 0)
