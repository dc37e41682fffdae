"""A fake model provider speaking the four wire protocols, for tests, development and benchmarks.

Plain ASGI (no framework). Run it with `python manage.py fake_upstream --port 8900`, or in tests
through the `fake_upstream` fixture (tests/fixtures/upstream.py). Base URLs per kind, for a
server at http://HOST:PORT:

    OpenAI-compatible  http://HOST:PORT/v1      /chat/completions, /models, /embeddings
    Anthropic          http://HOST:PORT         /v1/messages, /v1/models
    Gemini             http://HOST:PORT/v1beta  /models/{m}:generateContent,
                                                :streamGenerateContent?alt=sse, :embedContent,
                                                :batchEmbedContents, /models
    Ollama             http://HOST:PORT         /api/chat, /api/tags, /api/embed

Directives choose the reply and inject faults per request. They are `@name` or `@name=value`
words in the last user message, or in an `X-Fake-Directives` header (same syntax; for
requests without messages such as model listing and embeddings). Values with spaces are
quoted: `@reply="Hello there"`.

    @reply="text"       reply with exactly this text (split into word tokens)
    @tokens=N           reply with N tokens "tok1 tok2 …"
    @delay=S            seconds between tokens          @first_delay=S  before the first token
    @status=N           answer HTTP N with the protocol's error body (401, 429, 500, 503, 529…)
    @retry_after=S      Retry-After header on that error
    @error=context|content_filter|auth|bad_request
                        the protocol's own error for that case (status and wording)
    @stream_error=overloaded|rate_limit|server
                        start streaming, then send the protocol's in-stream error event
                        (after @error_after=N tokens, default 1)
    @cut_after=N        stream N tokens, then drop the connection mid-body
    @malformed_after=N  stream N tokens, then a chunk that is not valid JSON
    @truncate_after=N   stream N tokens, then end the body cleanly but without the end marker
    @redirect=PATH      answer 307 with Location: PATH (clients must not follow it)
    @hang               accept the request, then never answer (until the client goes away)
    @hang_after=N       stream N tokens, then stall
    @no_usage           report no token usage
    @cached=N           N more prompt tokens, reported as read from the prompt cache
    @cache_write=N      N more prompt tokens, reported as written to it (Anthropic reports
                        these; the others count them as plain prompt tokens)
    @cache_write_1h=N   as @cache_write, kept an hour (Anthropic's `cache_creation` says which)
    @reasoning=N        N more output tokens, reported as reasoning (OpenAI, Gemini; Anthropic
                        and Ollama count them in the output only)
    @finish=REASON      the OpenAI-compatible reply ends with this finish_reason (length,
                        content_filter…; default stop)
    @times=N            the fault applies only to the first N requests carrying this exact
                        directive text; later ones succeed (for retry tests)
    @only_model=ID      the fault applies only to requests for model ID (for fallback tests)

An API key containing "invalid" is rejected with 401. Error bodies echo the API key the way
some real providers do, so tests can check that it never leaks any further.

Every request is recorded in `app.requests` (a dict per request: method, path, query, headers,
json, model, directives, and `disconnected` = the client went away before the response ended,
`completed` = the response was sent in full).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote

DIRECTIVE = re.compile(r'@(\w+)(?:=("[^"]*"|\S+))?')
DEFAULT_REPLY = "Hello! This is a scripted reply from the fake upstream."
MODELS = ["fake-small", "fake-large", "gpt-4o-mini"]
FAULT_KEYS = {
    "redirect",
    "status",
    "error",
    "stream_error",
    "cut_after",
    "malformed_after",
    "truncate_after",
    "hang",
    "hang_after",
}


class Disconnected(Exception):
    pass


class CutOff(Exception):
    pass


def directives_parse(text: str) -> dict[str, str]:
    found = {}
    for match in DIRECTIVE.finditer(text or ""):
        value = match.group(2)
        if value is None:
            value = "1"
        elif value.startswith('"'):
            value = value[1:-1]
        found[match.group(1)] = value
    return found


def _last_user_text(body: dict) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    # Embeddings: directives may stand in the input texts too.
    inputs = body.get("input")
    if isinstance(inputs, str | list):
        return " ".join(inputs) if isinstance(inputs, list) else inputs
    contents = body.get("contents")
    if isinstance(contents, list):
        for content in reversed(contents):
            if content.get("role", "user") == "user":
                return " ".join(p.get("text", "") for p in content.get("parts", []))
    return ""


def _all_text(body: dict) -> str:
    return json.dumps(body.get("messages") or body.get("contents") or body.get("system") or "")


class Script:
    """What one request asked for, after @times/@only_model are applied."""

    def __init__(self, directives: dict[str, str], model: str, faulty: bool):
        d = directives
        self.faulty = faulty
        if "reply" in d:
            text = d["reply"]
        elif "tokens" in d:
            text = " ".join(f"tok{i}" for i in range(1, int(d["tokens"]) + 1))
        else:
            text = DEFAULT_REPLY
        words = text.split(" ")
        self.tokens = [w + " " for w in words[:-1]] + [words[-1]]
        self.delay = float(d.get("delay", 0))
        self.first_delay = float(d.get("first_delay", 0))
        self.no_usage = "no_usage" in d
        self.finish = d.get("finish", "stop")
        self.cached = int(d.get("cached", 0))
        self.cache_write_1h = int(d.get("cache_write_1h", 0))
        self.cache_write = int(d.get("cache_write", 0)) + self.cache_write_1h
        self.reasoning = int(d.get("reasoning", 0))
        self.model = model

        def fault(key):
            return d.get(key) if faulty else None

        self.status = int(fault("status") or 0)
        self.retry_after = d.get("retry_after")
        self.error = fault("error")
        self.stream_error = fault("stream_error")
        self.error_after = int(d.get("error_after", 1))
        self.cut_after = _int(fault("cut_after"))
        self.malformed_after = _int(fault("malformed_after"))
        self.truncate_after = _int(fault("truncate_after"))
        self.hang = bool(fault("hang"))
        self.redirect = fault("redirect")
        self.hang_after = _int(fault("hang_after"))

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def _int(value):
    return None if value is None else int(value)


class FakeUsage:
    """The tokens a reply reports: `prompt` and `output` are totals, the cache and reasoning
    counts parts of them."""

    def __init__(self, script: Script, prompt_words: int):
        self.cached, self.cache_write = script.cached, script.cache_write
        self.cache_write_1h = script.cache_write_1h
        self.reasoning = script.reasoning
        self.prompt = prompt_words + self.cached + self.cache_write
        self.output = len(script.tokens) + self.reasoning

    @property
    def total(self) -> int:
        return self.prompt + self.output

    def openai(self) -> dict:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.output,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning, "audio_tokens": 0},
        }

    def anthropic(self) -> dict:
        return {
            "input_tokens": self.prompt - self.cached - self.cache_write,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cached,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write - self.cache_write_1h,
                "ephemeral_1h_input_tokens": self.cache_write_1h,
            },
            "output_tokens": self.output,
        }

    def gemini(self) -> dict:
        meta = {
            "promptTokenCount": self.prompt,
            "candidatesTokenCount": self.output - self.reasoning,
            "totalTokenCount": self.total,
        }
        if self.cached:
            meta["cachedContentTokenCount"] = self.cached
        if self.reasoning:
            meta["thoughtsTokenCount"] = self.reasoning
        return meta


# --- Protocol dialects ----------------------------------------------------------------------


class Dialect:
    """How one protocol frames replies and errors."""

    content_type = "text/event-stream"

    def error(self, status: int, kind: str, message: str) -> dict:
        raise NotImplementedError

    def frame(self, data: Any, event: str | None = None) -> bytes:
        head = f"event: {event}\n" if event else ""
        return f"{head}data: {json.dumps(data)}\n\n".encode()

    def malformed(self) -> bytes:
        return b'data: {"this is": not json\n\n'


class OpenAIDialect(Dialect):
    def error(self, status, kind, message):
        codes = {
            "context": ("invalid_request_error", "context_length_exceeded"),
            "content_filter": ("invalid_request_error", "content_filter"),
            "auth": ("invalid_request_error", "invalid_api_key"),
            "rate_limit": ("requests", "rate_limit_exceeded"),
            "overloaded": ("server_error", "overloaded"),
        }
        err_type, code = codes.get(
            kind, ("invalid_request_error" if status < 500 else "server_error", None)
        )
        return {"error": {"message": message, "type": err_type, "param": None, "code": code}}

    def start(self, script, request):
        return []

    def token(self, script, text, index):
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": script.model,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
        if index == 0:
            chunk["choices"][0]["delta"]["role"] = "assistant"
        return [self.frame(chunk)]

    def end(self, script, request, usage):
        frames = [
            self.frame(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "model": script.model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": script.finish}],
                }
            )
        ]
        include = (request.get("stream_options") or {}).get("include_usage")
        if include and usage:
            frames.append(
                self.frame(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "model": script.model,
                        "choices": [],
                        "usage": usage.openai(),
                    }
                )
            )
        frames.append(b"data: [DONE]\n\n")
        return frames

    def stream_error(self, kind):
        return self.frame(self.error(500, kind, f"Fake in-stream {kind} error"))

    def whole(self, script, request, usage):
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": script.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": script.text},
                    "finish_reason": script.finish,
                }
            ],
        }
        if usage:
            body["usage"] = usage.openai()
        return body


class AnthropicDialect(Dialect):
    def error(self, status, kind, message):
        types = {
            "context": "invalid_request_error",
            "auth": "authentication_error",
            "rate_limit": "rate_limit_error",
            "overloaded": "overloaded_error",
            "server": "api_error",
        }
        by_status = {
            401: "authentication_error",
            403: "permission_error",
            429: "rate_limit_error",
            529: "overloaded_error",
            503: "overloaded_error",
        }
        err_type = (
            types.get(kind)
            or by_status.get(status)
            or ("invalid_request_error" if status < 500 else "api_error")
        )
        if kind == "context":
            message = "prompt is too long: 250000 tokens > 200000 maximum"
        return {"type": "error", "error": {"type": err_type, "message": message}}

    def start(self, script, request):
        usage = request["_usage"]
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": script.model,
            "stop_reason": None,
            "stop_sequence": None,
        }
        if usage:  # the output so far: 1, as Anthropic sends it
            message["usage"] = {**usage.anthropic(), "output_tokens": 1}
        return [
            self.frame({"type": "message_start", "message": message}, "message_start"),
            self.frame(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            self.frame({"type": "ping"}, "ping"),
        ]

    def token(self, script, text, index):
        return [
            self.frame(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
                "content_block_delta",
            )
        ]

    def end(self, script, request, usage):
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        }
        if usage:
            delta["usage"] = {"output_tokens": usage.output}
        return [
            self.frame({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            self.frame(delta, "message_delta"),
            self.frame({"type": "message_stop"}, "message_stop"),
        ]

    def stream_error(self, kind):
        return self.frame(self.error(500, kind, f"Fake in-stream {kind} error"), "error")

    def whole(self, script, request, usage):
        body = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": script.model,
            "content": [{"type": "text", "text": script.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if usage:
            body["usage"] = usage.anthropic()
        return body


class GeminiDialect(Dialect):
    def error(self, status, kind, message):
        statuses = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }
        if kind == "context":
            message = "Request exceeds the context window: 1200000 tokens > 1048576 allowed."
        if kind == "auth":
            message = "API key not valid. Please pass a valid API key."
        if kind == "overloaded":
            status = 503
        if kind == "rate_limit":
            status = 429
        return {
            "error": {
                "code": status or 500,
                "message": message,
                "status": statuses.get(status, "INTERNAL"),
            }
        }

    def start(self, script, request):
        return []

    def _chunk(self, script, text, finish=None, usage=None):
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body = {"candidates": [candidate], "modelVersion": script.model}
        if usage:
            body["usageMetadata"] = usage.gemini()
        return body

    def frame(self, data, event=None):
        return f"data: {json.dumps(data)}\r\n\r\n".encode()

    def token(self, script, text, index):
        return [self.frame(self._chunk(script, text))]

    def end(self, script, request, usage):
        return [self.frame(self._chunk(script, "", "STOP", usage))]

    def stream_error(self, kind):
        return self.frame(
            self.error(503 if kind == "overloaded" else 500, kind, f"Fake in-stream {kind} error")
        )

    def whole(self, script, request, usage):
        return self._chunk(script, script.text, "STOP", usage)


class OllamaDialect(Dialect):
    content_type = "application/x-ndjson"

    def error(self, status, kind, message):
        if kind == "context":
            message = "input length exceeds the context length"
        if kind == "overloaded":
            message = "server overloaded, please retry shortly"
        return {"error": message}

    def frame(self, data, event=None):
        return (json.dumps(data) + "\n").encode()

    def malformed(self):
        return b'{"model": "broken\n'

    def start(self, script, request):
        return []

    def token(self, script, text, index):
        return [
            self.frame(
                {
                    "model": script.model,
                    "created_at": "2025-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": text},
                    "done": False,
                }
            )
        ]

    def _final(self, script, usage, content=""):
        body = {
            "model": script.model,
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": "stop",
        }
        if usage:
            body.update(prompt_eval_count=usage.prompt, eval_count=usage.output)
        return body

    def end(self, script, request, usage):
        return [self.frame(self._final(script, usage))]

    def stream_error(self, kind):
        return self.frame(self.error(500, kind, f"Fake in-stream {kind} error"))

    def whole(self, script, request, usage):
        return self._final(script, usage, script.text)


ERROR_STATUS = {"context": 400, "content_filter": 400, "auth": 401, "bad_request": 400}


class FakeUpstream:
    def __init__(self, *, keep_requests: bool = True):
        # A long-running server (benchmarks) must not grow its request log forever.
        self.keep_requests = keep_requests
        self.requests: list[dict] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._counts.clear()

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        record = {
            "method": scope["method"],
            "path": scope["path"],
            "query": parse_qs(scope.get("query_string", b"").decode()),
            "headers": headers,
            "json": body,
            "model": None,
            "directives": {},
            "disconnected": False,
            "completed": False,
            # (host, port) of the caller's socket: requests on one connection share it.
            "client": tuple(scope.get("client") or ()),
        }
        if self.keep_requests:
            with self._lock:
                self.requests.append(record)
        responder = Responder(send, receive, record)
        watcher = asyncio.ensure_future(responder.watch_disconnect())
        try:
            await self.route(scope, headers, body, record, responder)
            record["completed"] = not record["disconnected"]
        except Disconnected:
            record["disconnected"] = True
        except CutOff:
            # Returning mid-body makes the server drop the connection.
            record["cut"] = True
        finally:
            watcher.cancel()

    async def route(self, scope, headers, body, record, responder):
        path = unquote(scope["path"])
        method = scope["method"]
        if path.startswith("/v1beta/"):
            dialect: Dialect = GeminiDialect()
        elif path.startswith("/api/"):
            dialect = OllamaDialect()
        elif path.startswith("/v1/messages") or (path == "/v1/models" and "x-api-key" in headers):
            dialect = AnthropicDialect()
        else:
            dialect = OpenAIDialect()

        model = body.get("model") or ""
        gemini = re.match(r"^/v1beta/models/([^:]+):(\w+)$", path)
        if gemini:
            model = gemini.group(1)
        record["model"] = model

        text = _last_user_text(body) + " " + headers.get("x-fake-directives", "")
        directives = directives_parse(text)
        record["directives"] = directives
        script = Script(directives, model, self._faulty(directives, model))

        key = (
            headers.get("authorization", "").removeprefix("Bearer ")
            or headers.get("x-api-key", "")
            or headers.get("x-goog-api-key", "")
        )
        if "invalid" in key:
            return await responder.json(
                401, dialect.error(401, "auth", f"Incorrect API key provided: {key}.")
            )
        if script.hang:
            await responder.hang()
        if script.redirect:
            return await responder.json(307, {}, {"location": script.redirect})
        if script.error:
            status = ERROR_STATUS.get(script.error, 400)
            return await responder.json(
                status, dialect.error(status, script.error, f"Fake {script.error} error")
            )
        if script.status:
            extra = {"retry-after": script.retry_after} if script.retry_after else {}
            # Like some real providers, echo the key back in errors (tests check it stops here).
            message = f"Fake error {script.status} for key {key}"
            return await responder.json(
                script.status, dialect.error(script.status, "", message), extra
            )

        if method == "GET" and path in ("/v1/models", "/v1beta/models", "/api/tags"):
            return await responder.json(200, self.models_body(dialect))
        if (
            path == "/v1/embeddings"
            or path == "/api/embed"
            or (gemini and gemini.group(2) in ("embedContent", "batchEmbedContents"))
        ):
            return await responder.json(200, self.embeddings_body(dialect, body, gemini))

        stream_wanted = bool(body.get("stream"))
        if isinstance(dialect, OllamaDialect) and "stream" not in body:
            stream_wanted = True
        if gemini:
            stream_wanted = gemini.group(2) == "streamGenerateContent"
        prompt_words = max(1, len(_all_text(body).split()) // 2)
        usage = None if script.no_usage else FakeUsage(script, prompt_words)
        # A copy: the request log keeps the body exactly as received.
        body = {**body, "_usage": usage}
        if not stream_wanted:
            if script.first_delay:
                await responder.sleep(script.first_delay)
            return await responder.json(200, dialect.whole(script, body, usage))
        await self.stream(dialect, script, body, usage, responder)

    def _faulty(self, directives, model) -> bool:
        if not FAULT_KEYS & directives.keys():
            return False
        only = directives.get("only_model")
        if only and only != model:
            return False
        if "times" in directives:
            signature = json.dumps(sorted(directives.items()))
            with self._lock:
                seen = self._counts.get(signature, 0)
                self._counts[signature] = seen + 1
            return seen < int(directives["times"])
        return True

    async def stream(self, dialect, script, body, usage, responder):
        await responder.start(200, dialect.content_type)
        for frame in dialect.start(script, body):
            await responder.body(frame)
        if script.first_delay:
            await responder.sleep(script.first_delay)
        for index, token in enumerate(script.tokens):
            if index == script.cut_after:
                # Let what was sent reach the client first: a dropped connection discards
                # unread bytes, and the tests assert on exactly which tokens arrived.
                await responder.sleep(0.05)
                return await responder.cut()
            if index == script.malformed_after:
                await responder.body(dialect.malformed())
                return await responder.end()
            if index == script.truncate_after:
                return await responder.end()
            if index == script.hang_after:
                await responder.hang()
            if script.stream_error and index == script.error_after:
                await responder.body(dialect.stream_error(script.stream_error))
                return await responder.end()
            if index and script.delay:
                await responder.sleep(script.delay)
            for frame in dialect.token(script, token, index):
                await responder.body(frame)
        if script.stream_error:
            await responder.body(dialect.stream_error(script.stream_error))
            return await responder.end()
        for frame in dialect.end(script, body, usage):
            await responder.body(frame)
        await responder.end()

    def models_body(self, dialect):
        if isinstance(dialect, GeminiDialect):
            return {
                "models": [
                    {
                        "name": f"models/{m}",
                        "displayName": m.replace("-", " ").title(),
                        "inputTokenLimit": 32768,
                        "supportedGenerationMethods": ["generateContent", "countTokens"],
                    }
                    for m in MODELS
                ]
            }
        if isinstance(dialect, OllamaDialect):
            return {"models": [{"name": m, "model": m, "size": 1} for m in MODELS]}
        if isinstance(dialect, AnthropicDialect):
            return {
                "data": [
                    {
                        "type": "model",
                        "id": m,
                        "display_name": m.title(),
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for m in MODELS
                ],
                "has_more": False,
            }
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in MODELS],
        }

    def embeddings_body(self, dialect, body, gemini):
        def vector(text: str) -> list[float]:
            return [round(len(text) / 10, 3), float(len(text.split())), 1.0]

        if gemini:
            if gemini.group(2) == "embedContent":
                text = " ".join(p.get("text", "") for p in body["content"]["parts"])
                return {"embedding": {"values": vector(text)}}
            texts = [
                " ".join(p.get("text", "") for p in r["content"]["parts"]) for r in body["requests"]
            ]
            return {"embeddings": [{"values": vector(t)} for t in texts]}
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        tokens = sum(len(t.split()) for t in inputs)
        if isinstance(dialect, OllamaDialect):
            return {
                "model": body.get("model"),
                "embeddings": [vector(t) for t in inputs],
                "prompt_eval_count": tokens,
            }
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector(t)}
                for i, t in enumerate(inputs)
            ],
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Responder:
    """Sends one response, noticing when the client goes away."""

    def __init__(self, send, receive, record):
        self._send = send
        self._receive = receive
        self.record = record
        self.gone = asyncio.Event()
        self._sleeping: asyncio.Future | None = None  # the one `sleep` under way

    async def watch_disconnect(self):
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.record["disconnected"] = not self.record.get("_ended", False)
                self.gone.set()
                if self._sleeping is not None and not self._sleeping.done():
                    self._sleeping.set_result(None)
                return

    async def _emit(self, message):
        if self.gone.is_set():
            raise Disconnected
        try:
            await self._send(message)
        except OSError as exc:  # uvicorn's ClientDisconnected
            raise Disconnected from exc

    async def start(self, status, content_type, extra=None):
        headers = [(b"content-type", content_type.encode())]
        headers += [(k.encode(), str(v).encode()) for k, v in (extra or {}).items()]
        await self._emit({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes):
        await self._emit({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self):
        self.record["_ended"] = True
        await self._emit({"type": "http.response.body", "body": b"", "more_body": False})

    async def json(self, status, data, extra=None):
        await self.start(status, "application/json", extra)
        self.record["_ended"] = True
        await self._emit(
            {"type": "http.response.body", "body": json.dumps(data).encode(), "more_body": False}
        )

    async def sleep(self, seconds):
        """Wait, ending early (Disconnected) when the client goes away. A timer and a future,
        not `wait_for`, which starts a task for every token of every stream."""
        if self.gone.is_set():
            raise Disconnected
        loop = asyncio.get_running_loop()
        self._sleeping = waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleeping = None
        if self.gone.is_set():
            raise Disconnected

    async def hang(self):
        await self.gone.wait()
        raise Disconnected

    async def cut(self):
        raise CutOff


app = FakeUpstream()
