"""The adapter base class: HTTP plumbing and error mapping shared by every wire protocol.

A protocol module subclasses `Adapter`, sets `kind`, `label` and `default_base_url`, and
implements `stream`, `list_models` (and `embed` where the protocol has embeddings). `complete`
is built on `stream` unless a protocol overrides it with its non-streaming endpoint.

Every failure leaves an adapter as a `ProviderError` subclass whose message is safe to show a
user: upstream error text is included only for bad requests, truncated, with the API key
scrubbed out of it.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
from django.utils.translation import gettext as _

from providers.http import body_end, body_reader, get_client, parsed_url, request_timeout
from providers.netguard import UnsafeURL, address_check_async, trusted_default
from providers.types import (
    ChatRequest,
    Completion,
    Finish,
    ModelInfo,
    ProviderAuthenticationError,
    ProviderBadRequest,
    ProviderContentFiltered,
    ProviderContextTooLong,
    ProviderError,
    ProviderOverloaded,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnreachable,
    ProviderUpstreamError,
    StreamEvent,
    Target,
    TextDelta,
    Usage,
)

# Words providers use when a prompt exceeds the model's context window.
CONTEXT_ERROR_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "exceeds the context",
)
AUTH_ERROR_MARKERS = (
    "authentication_error",
    "invalid_api_key",
    "api key not valid",
    "invalid x-api-key",
    "permission_denied",
    "unauthenticated",
)
CONTENT_FILTER_MARKERS = ("content_filter", "content_policy", "content management policy", "safety")
UPSTREAM_MESSAGE_LIMIT = 300


def retry_after_parse(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def secret_scrub(text: str, secret: str) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    return text


def malformed() -> ProviderUpstreamError:
    return ProviderUpstreamError(_("The provider sent a malformed response."))


def cut_off() -> ProviderUpstreamError:
    return ProviderUpstreamError(_("The provider's response was cut off."))


class SSEParser:
    """An incremental text/event-stream parser: `feed` takes the bytes of a body as they
    arrive and returns the (event name, data) pairs completed by them.

    A received chunk usually holds one or more whole events, so the parser splits the chunk
    as one block (bytes.splitlines breaks exactly on the SSE terminators CRLF, LF and CR, and
    never inside a UTF-8 sequence) instead of going through httpx's text decoder and line
    iterator per line. Only a trailing incomplete line is kept for the next chunk; a CR
    ending one chunk may be the first half of a CRLF whose LF starts the next one.
    Fields other than `event` and `data` (id, retry) are ignored.
    """

    def __init__(self):
        self._partial = b""
        self._after_cr = False
        self._started = False
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if self._partial:
            chunk = self._partial + chunk
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
        if not end:
            self._partial = chunk
            return []
        self._partial = chunk[end:]
        self._after_cr = chunk[end - 1] == 0x0D
        return self._lines(chunk[:end])

    def close(self) -> list[tuple[str, str]]:
        """The event left when the body ends without its blank line."""
        events = self._lines(self._partial) if self._partial else []
        self._partial = b""
        if self._data:
            events.append(self._dispatch())
        return events

    def _lines(self, block: bytes) -> list[tuple[str, str]]:
        if not self._started:
            self._started = True
            block = block.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
        events = []
        for line in block.splitlines():
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = ""
                continue
            if line[0] == 0x3A:  # ":" starts a comment (keep-alive)
                continue
            name, _sep, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value.decode(errors="replace")
        return events

    def _dispatch(self) -> tuple[str, str]:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = (self._event or "message", data.decode(errors="replace"))
        self._event, self._data = "", []
        return event


async def sse_batches(response: httpx.Response) -> AsyncIterator[list[tuple[str, str]]]:
    """The (event name, data) pairs of a text/event-stream body, in the groups that arrived
    together: one list per read (never empty). A caller that merges a group's text deltas does
    its per-event work once per read, so a process that falls behind a fast stream catches up
    in fewer, larger steps."""
    parser = SSEParser()
    read = body_reader(response)
    while chunk := await read():
        events = parser.feed(chunk)
        if events:
            yield events
    events = parser.close()
    if events:
        yield events


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) pairs of a text/event-stream body, as they arrive."""
    async for events in sse_batches(response):
        for event in events:
            yield event


def json_loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise malformed() from exc


def token_count(data: Any, *path: str) -> int:
    """The token count at `path` in a provider's usage object: 0 when it is missing, null or
    not a count (a provider's report of an extra detail must not fail an answer)."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    if isinstance(data, bool) or not isinstance(data, int | float):
        return 0
    return max(0, int(data))


class Adapter:
    kind: ClassVar[str]
    label: ClassVar[str]
    default_base_url: ClassVar[str] = ""
    # genai-prices provider id, for context windows and prices of listed models.
    price_provider_id: ClassVar[str | None] = None
    needs_api_key: ClassVar[bool] = True
    needs_network: ClassVar[bool] = True
    supports_embeddings: ClassVar[bool] = False
    # The sampling temperatures the protocol's API accepts (inclusive), or None when it takes
    # any. A request outside them is refused before the call (providers.routing skips the
    # candidate): the provider would refuse it anyway, after a round trip, as a bad request.
    temperature_range: ClassVar[tuple[float, float] | None] = None
    # The sampling hints of ChatRequest the vendor's API takes, {hint: the vendor's field};
    # the others are not sent (docs/providers.md, "Sampling hints").
    sampling_fields: ClassVar[dict[str, str]] = {}

    def sampling_hints_sent(self, request: ChatRequest) -> dict:
        """The request's hints the vendor takes, under its field names; none sent as null."""
        return {
            name: value
            for hint, name in self.sampling_fields.items()
            if (value := getattr(request, hint)) is not None
        }

    # --- The interface ------------------------------------------------------------------

    async def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def complete(self, target: Target, request: ChatRequest) -> Completion:
        parts: list[str] = []
        usage: Usage | None = None
        reason = "stop"
        async with contextlib.aclosing(self.stream(target, request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                elif isinstance(event, Usage):
                    usage = event
                elif isinstance(event, Finish):
                    reason = event.reason
        return Completion(text="".join(parts), finish_reason=reason, usage=usage)

    async def answer_events(
        self, target: Target, request: ChatRequest
    ) -> AsyncIterator[StreamEvent]:
        """The answer as the same events as `stream`, from one non-streaming call: for a
        caller that wants it whole, one parsed body instead of an event per token."""
        completion = await self.complete(target, request)
        if completion.text:
            yield TextDelta(completion.text)
        if completion.usage is not None:
            yield completion.usage
        yield Finish(completion.finish_reason)

    async def list_models(self, target: Target) -> list[ModelInfo]:
        raise NotImplementedError

    async def embed(
        self, target: Target, model: str, inputs: list[str]
    ) -> tuple[list[list[float]], int]:
        raise ProviderBadRequest(_("This provider does not offer embeddings."))

    def temperature_accepts(self, temperature: float) -> bool:
        if self.temperature_range is None:
            return True
        low, high = self.temperature_range
        return low <= temperature <= high

    # --- Protocol hooks -----------------------------------------------------------------

    def headers(self, target: Target) -> dict[str, str]:
        return {}

    def error_details(self, body: Any) -> tuple[str, str]:
        """(error type/code, message) out of an error body; protocols refine it."""
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                kind = str(error.get("code") or error.get("type") or error.get("status") or "")
                return kind, str(error.get("message") or "")
            if isinstance(error, str):
                return "", error
        return "", body if isinstance(body, str) else ""

    # --- Shared plumbing ----------------------------------------------------------------

    def url(self, target: Target, path: str) -> str:
        base = (target.base_url or self.default_base_url).rstrip("/")
        return base + path

    def error_for(
        self, status: int, headers: Mapping[str, str], body: Any, target: Target
    ) -> ProviderError:
        """Map an HTTP error answer (or an in-stream error, status 0) to the taxonomy."""
        code, message = self.error_details(body)
        message = secret_scrub(message, target.api_key)[:UPSTREAM_MESSAGE_LIMIT]
        lowered = f"{code} {message}".lower()
        retry_after = retry_after_parse(headers)
        if any(marker in lowered for marker in CONTEXT_ERROR_MARKERS):
            return ProviderContextTooLong()
        if status in (401, 403) or any(marker in lowered for marker in AUTH_ERROR_MARKERS):
            return ProviderAuthenticationError()
        if status == 429:
            return ProviderRateLimited(retry_after=retry_after)
        if status in (503, 529):
            return ProviderOverloaded(retry_after=retry_after)
        if status in (408, 504):
            return ProviderTimeout()
        if any(marker in lowered for marker in CONTENT_FILTER_MARKERS):
            return ProviderContentFiltered()
        # In-stream errors (status 0) and odd statuses: go by the error's own words.
        if "rate_limit" in lowered or "resource_exhausted" in lowered:
            return ProviderRateLimited(retry_after=retry_after)
        if "overloaded" in lowered or "unavailable" in lowered:
            return ProviderOverloaded(retry_after=retry_after)
        if "timeout" in lowered or "deadline" in lowered:
            return ProviderTimeout()
        if 400 <= status < 500 or (status == 0 and "invalid" in lowered):
            if message:
                return ProviderBadRequest(
                    _("The provider refused the request: %(message)s") % {"message": message}
                )
            return ProviderBadRequest()
        return ProviderUpstreamError()

    async def _guard(self, target: Target, url: str) -> None:
        base = target.base_url or self.default_base_url
        if not target.allow_private_network and not trusted_default(base, self.default_base_url):
            try:
                await address_check_async(url)
            except UnsafeURL as exc:
                raise ProviderBadRequest(str(exc)) from None

    @contextlib.asynccontextmanager
    async def _mapped_transport_errors(self):
        try:
            yield
        except httpx.TimeoutException as exc:
            # httpx-aiohttp maps every aiohttp connection error, a refused connection too, to
            # ConnectTimeout: only a cause that is itself a timeout is one.
            if exc.__cause__ is not None and not isinstance(exc.__cause__, TimeoutError):
                raise ProviderUnreachable(_("Could not connect to the provider.")) from exc
            raise ProviderTimeout() from exc
        except httpx.ConnectError as exc:
            raise ProviderUnreachable(_("Could not connect to the provider.")) from exc
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as exc:
            raise cut_off() from exc
        except httpx.HTTPError as exc:
            raise ProviderUpstreamError() from exc

    async def _raise_for_status(self, response: httpx.Response, target: Target) -> None:
        if response.status_code < 400 and not (300 <= response.status_code < 400):
            return
        if 300 <= response.status_code < 400:
            raise ProviderUpstreamError(_("The provider answered with a redirect."))
        raw = await response.aread()
        try:
            body: Any = json.loads(raw[:65536])
        except ValueError:
            body = raw[:2000].decode(errors="replace")
        raise self.error_for(response.status_code, response.headers, body, target)

    @contextlib.asynccontextmanager
    async def open_stream(
        self, target: Target, method: str, path: str, *, json_body: Any = None
    ) -> AsyncIterator[httpx.Response]:
        """A streamed response with a 2xx status. When the block exits early (the consumer
        stopped: GeneratorExit/cancellation) or with an error, the connection is closed; when it
        ends normally, the rest of the body is read so that the connection can be reused."""
        url = self.url(target, path)
        await self._guard(target, url)
        headers = {**self.headers(target)}
        async with self._mapped_transport_errors():
            async with get_client().stream(
                method, parsed_url(url), json=json_body, headers=headers, timeout=request_timeout()
            ) as response:
                await self._raise_for_status(response, target)
                yield response
                # Reached only when the block ended normally, not when the consumer left early
                # or failed: then the connection must close, which stops the upstream call.
                await body_end(response)

    async def request_json(
        self, target: Target, method: str, path: str, *, json_body: Any = None
    ) -> Any:
        async with self.open_stream(target, method, path, json_body=json_body) as response:
            async with self._mapped_transport_errors():
                raw = await response.aread()
        return json_loads(raw)

    def models_priced(self, models: list[ModelInfo]) -> list[ModelInfo]:
        return models
