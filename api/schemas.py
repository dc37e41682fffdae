"""Request bodies of the /v1 API. Unknown fields are ignored, as OpenAI and Anthropic do;
wrong types are refused with a message that names the field.

Parameters this server knows but does not implement (tools, JSON mode, several choices, log
probabilities…) are refused with `unsupported_parameter` rather than ignored: an SDK user
asking for tool calls must not get a plain answer with no sign the request was dropped. Their
values that ask for nothing (`tools: []`, `tool_choice: "none"`, `n: 1`,
`response_format: {"type": "text"}`…) are accepted, as SDKs and tools often send them. So are
the messages of a tool conversation (role "tool", an assistant's `tool_calls`, Anthropic's
`tool_use`/`tool_result` blocks): refused, naming the message.

The sampling hints (seed, penalties, top_k, logit_bias, reasoning_effort, the end-user id) go
to the provider unchanged (`sampling_hints`); each adapter sends those its vendor's API has."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from gateway.response_cache import CachePolicy, policy_from_cache_control, policy_from_options
from providers.types import ImagePart, Message, cache_longest

from .errors import ApiError


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


def _not_implemented(accepted: str = "", **constraints):
    unless = f"absent, null or {accepted}" if accepted else "absent or null"
    return Field(
        default=None,
        description="Not supported by this server: refused with 400 unsupported_parameter "
        f"unless {unless}.",
        **constraints,
    )


def _hint(description: str, **constraints):
    return Field(
        default=None,
        description=f"{description} Sent to the providers whose API has it, in their own "
        'field; dropped for the others (docs/providers.md, "Sampling hints").',
        **constraints,
    )


_TEMPERATURE = (
    "Refused with 400 temperature_unsupported (param temperature, before any upstream call, "
    "nothing billed) when no provider of the model accepts it: Anthropic's take 0 to 1."
)


class CacheOptions(_Body):
    """The response cache's controls in a request body, as the LiteLLM proxy spells them
    (docs/api.md, "Response cache")."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    no_cache: bool = Field(
        default=False, alias="no-cache", description="Do not answer from the cache."
    )
    no_store: bool = Field(default=False, alias="no-store", description="Do not keep this answer.")
    ttl: int | None = Field(
        default=None, ge=0, description="Seconds to keep this answer (capped by the server)."
    )
    s_maxage: int | None = Field(
        default=None,
        ge=0,
        alias="s-maxage",
        description="The oldest cached answer taken, in seconds (0: none).",
    )


class _Request(_Body):
    # {parameter: its values that ask for nothing}; None (absent) always does.
    not_implemented: ClassVar[dict[str, tuple]] = {}

    cache: CacheOptions | None = Field(
        default=None,
        description='An extension: use the response cache (docs/api.md, "Response cache"). '
        "The request's Cache-Control header does the same.",
    )

    def cache_policy(self, cache_control: str = "") -> CachePolicy | None:
        """What this request allows of the response cache: its `cache` object, else its
        `Cache-Control` header; None when it asks for nothing (no lookup, nothing kept)."""
        if self.cache is not None:
            return policy_from_options(
                no_cache=self.cache.no_cache,
                no_store=self.cache.no_store,
                ttl=self.cache.ttl,
                s_maxage=self.cache.s_maxage,
            )
        return policy_from_cache_control(cache_control) if cache_control else None

    def unsupported_parameter(self) -> str | None:
        """The first parameter given a value this server does not implement, if any."""
        for name, harmless in self.not_implemented.items():
            value = getattr(self, name)
            if value is not None and value not in harmless:
                return name
        return None

    def unsupported_message(self) -> tuple[str, str] | None:
        """(param, message) for the first message this server cannot take, if any."""
        return None


class CacheControl(_Body):
    """Anthropic's prompt-cache breakpoint, taken on /v1/messages blocks and (as LiteLLM
    does) on /v1/chat/completions content parts."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


_CACHE_CONTROL = Field(
    default=None,
    description="A prompt-cache breakpoint: passed to Anthropic after the part's message "
    "(or the whole system prompt); other providers cache prompts by themselves.",
)


class InlineFile:
    """A file sent in a request's content (`file_data`: a data: URL, or bare base64) and what
    it is, read once from its bytes as a chat attachment is (chat.attachments): a document's
    text, or an image. `read` is CPU work: the endpoints read on a thread first
    (api.handlers._files_read)."""

    def __init__(self, filename: str | None, file_data: str, where: str):
        self.name = filename or "file"
        self._data = file_data
        self.where = where
        self.text: str | None = None  # a document's
        self.image: ImagePart | None = None

    def read(self) -> None:
        if self.text is not None or self.image is not None:
            return
        from chat.attachments import AttachmentRefused, data_url, upload_read

        encoded = self._data.split(",", 1)[1] if self._data.startswith("data:") else self._data
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(
                400,
                "invalid_file",
                f"The file {self.where} is not base64: send it as a data: URL "
                "(data:<media type>;base64,<bytes>).",
                param=self.where,
            ) from None
        try:
            read = upload_read(name=self.name, data=data)
        except AttachmentRefused as refused:
            said = refused.message["text"] % refused.message.get("values", {})
            raise ApiError(
                400, "invalid_file", f"{said} ({self.where})", param=self.where
            ) from None
        if read.kind == "image":
            media_type = read.model_media_type or read.media_type
            self.image = ImagePart(
                url=data_url(media_type=media_type, data=read.model_data or data)
            )
        else:
            self.text = read.text


def _file_refused(*, file_id, file_url, file_data, where: str) -> tuple[str, str] | None:
    if file_id:
        return (
            f"{where}.file_id",
            f"The file {where} is given by file_id: uploaded file ids are not supported by "
            "this server for messages; send the file's bytes in file_data (a data: URL).",
        )
    if file_url:
        return (
            f"{where}.file_url",
            f"The file {where} is given by file_url: this server does not fetch files; send "
            "its bytes in file_data (a data: URL).",
        )
    if not file_data:
        return (f"{where}.file_data", f"The file {where} has no file_data.")
    return None


def _with_files(text: str, files: list[InlineFile]) -> tuple[str, tuple[ImagePart, ...]]:
    """A message's text with its documents' after it (as a chat message's), and its images."""
    from chat.attachments import prompt_text

    for file in files:
        file.read()  # already read on a thread by the endpoints; batches read here
    documents = [(f.name, f.text) for f in files if f.text is not None]
    return prompt_text(content=text, documents=documents), tuple(
        f.image for f in files if f.image is not None
    )


class TextPart(_Body):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = _CACHE_CONTROL


class ImageUrl(_Body):
    url: str


class ImageUrlPart(_Body):
    type: Literal["image_url"]
    image_url: ImageUrl
    cache_control: CacheControl | None = _CACHE_CONTROL


class FileData(_Body):
    filename: str | None = None
    file_data: str | None = Field(
        default=None,
        description="The file's bytes as a data: URL (or bare base64): a PDF, Word, Excel or "
        "PowerPoint document or a text file is given to the model as text, an image as an "
        "image (what a chat attachment may be).",
    )
    file_id: str | None = Field(default=None, description="Refused: send file_data.")


class FilePart(_Body):
    type: Literal["file"]
    file: FileData
    _inline: InlineFile | None = PrivateAttr(default=None)

    def inline(self, where: str) -> InlineFile:
        if self._inline is None:
            self._inline = InlineFile(self.file.filename, self.file.file_data or "", where)
        return self._inline


class ChatMessage(_Body):
    # "tool" and "function" parse so that they are refused as unsupported, not as invalid.
    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(
        description='"tool" and "function" are refused with 400 unsupported_parameter '
        "(param messages[N].role): tool calls are not implemented."
    )
    content: (
        str
        | list[Annotated[TextPart | ImageUrlPart | FilePart, Field(discriminator="type")]]
        | None
    ) = None
    tool_calls: list[Any] | None = _not_implemented("[]")
    function_call: dict | None = _not_implemented()

    def unsupported(self, index: int) -> tuple[str, str] | None:
        where = f"messages[{index}]"
        if self.role in ("tool", "function"):
            return (
                f"{where}.role",
                f"The role '{self.role}' ({where}.role) is not supported by this server "
                f"({self.role} calls are not implemented, so there are no {self.role} results "
                "to send).",
            )
        if self.tool_calls:
            return (
                f"{where}.tool_calls",
                f"The parameter '{where}.tool_calls' is not supported by this server (tool "
                "calls are not implemented; send messages without tool_calls).",
            )
        if self.function_call is not None:
            return (
                f"{where}.function_call",
                f"The parameter '{where}.function_call' is not supported by this server "
                "(function calls are not implemented).",
            )
        for number, part in enumerate(self.content if isinstance(self.content, list) else ()):
            if not isinstance(part, FilePart):
                continue
            refused = _file_refused(
                file_id=part.file.file_id,
                file_url=None,
                file_data=part.file.file_data,
                where=f"{where}.content[{number}].file",
            )
            if refused:
                return refused
        return None


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    not_implemented: ClassVar[dict[str, tuple]] = {
        "tools": ([],),
        "tool_choice": ("none", "auto"),
        "functions": ([],),
        "function_call": ("none", "auto"),
        "response_format": ({"type": "text"},),
        "n": (1,),
        "logprobs": (False,),
        "top_logprobs": (0,),
        "modalities": (["text"],),
        "audio": (),
    }

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2, description=_TEMPERATURE)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    # Sampling hints: see `sampling_hints`.
    seed: int | None = _hint("Best-effort deterministic sampling.")
    frequency_penalty: float | None = _hint("From -2 to 2.", ge=-2, le=2)
    presence_penalty: float | None = _hint("From -2 to 2.", ge=-2, le=2)
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = _hint(
        "Token id (as a string) to a bias from -100 to 100."
    )
    reasoning_effort: str | None = _hint("As the provider names it: low, medium, high…")
    user: str | None = _hint("Your end user's id (Anthropic: metadata.user_id).")
    top_k: int | None = _hint(
        "Not OpenAI's (an extension, as vLLM, OpenRouter and LiteLLM take it): sample from "
        "the k likeliest tokens.",
        ge=0,
    )
    # Refused unless they ask for nothing: see `not_implemented`.
    n: int | None = _not_implemented("1", ge=1)
    tools: list[Any] | None = _not_implemented("[]")
    tool_choice: str | dict | None = _not_implemented('"none" or "auto"')
    functions: list[Any] | None = _not_implemented("[]")
    function_call: str | dict | None = _not_implemented('"none" or "auto"')
    response_format: dict | None = _not_implemented('{"type": "text"}')
    logprobs: bool | None = _not_implemented("false")
    top_logprobs: int | None = _not_implemented("0", ge=0)
    modalities: list[str] | None = _not_implemented('["text"]')
    audio: dict | None = _not_implemented()

    def unsupported_message(self) -> tuple[str, str] | None:
        for index, message in enumerate(self.messages):
            if refused := message.unsupported(index):
                return refused
        return None

    def sampling_hints(self) -> dict:
        """The sampling hints, as `gateway.pipeline.stream` takes them."""
        return {
            "seed": self.seed,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "top_k": self.top_k,
            "logit_bias": self.logit_bias,
            "reasoning_effort": self.reasoning_effort,
            "end_user_id": self.user,
        }

    def inline_files(self) -> list[InlineFile]:
        """The files sent in the messages' content."""
        return [f for m in self._files_by_message() for f in m]

    def _files_by_message(self) -> list[list[InlineFile]]:
        return [
            [
                part.inline(f"messages[{i}].content[{j}].file.file_data")
                for j, part in enumerate(m.content)
                if isinstance(part, FilePart)
            ]
            if isinstance(m.content, list)
            else []
            for i, m in enumerate(self.messages)
        ]

    def provider_messages(self) -> list[Message]:
        out = []
        for m, inline in zip(self.messages, self._files_by_message(), strict=True):
            role = "system" if m.role == "developer" else m.role
            if isinstance(m.content, list):
                text = "".join(p.text for p in m.content if isinstance(p, TextPart))
                images = tuple(
                    ImagePart(url=p.image_url.url) for p in m.content if isinstance(p, ImageUrlPart)
                )
                if inline:
                    text, file_images = _with_files(text, inline)
                    images += file_images
                out.append(
                    Message(role=role, content=text, images=images, cache=_cache_ttl(m.content))
                )
            else:
                out.append(Message(role=role, content=m.content or ""))
        return out

    def generation_options(self) -> dict:
        """The output limit, sampling and stop sequences, as `gateway.pipeline.stream` takes
        them."""
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or ()
        return {
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": tuple(stop),
        }


class AnthropicTextBlock(_Body):
    type: Literal["text"]
    text: str
    cache_control: CacheControl | None = _CACHE_CONTROL


class AnthropicImageSource(_Body):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class AnthropicImageBlock(_Body):
    type: Literal["image"]
    source: AnthropicImageSource
    cache_control: CacheControl | None = _CACHE_CONTROL


class AnthropicToolBlock(_Body):
    """A block of a tool conversation: parsed so that it is refused as unsupported."""

    type: Literal["tool_use", "tool_result"] = Field(
        description="Refused with 400 (tool use is not implemented)."
    )


class AnthropicMessage(_Body):
    role: Literal["user", "assistant"]
    content: (
        str
        | list[
            Annotated[
                AnthropicTextBlock | AnthropicImageBlock | AnthropicToolBlock,
                Field(discriminator="type"),
            ]
        ]
    )


class AnthropicMetadata(_Body):
    user_id: str | None = None


class AnthropicMessagesRequest(_Request):
    not_implemented: ClassVar[dict[str, tuple]] = {
        "tools": ([],),
        "tool_choice": ({"type": "none"}, {"type": "auto"}),
        "thinking": ({"type": "disabled"},),
    }

    model: str = Field(min_length=1)
    max_tokens: int = Field(gt=0)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[AnthropicTextBlock] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None
    # Sampling hints: see `sampling_hints`.
    top_k: int | None = _hint("Sample from the k likeliest tokens.", ge=0)
    metadata: AnthropicMetadata | None = _hint(
        "metadata.user_id: your end user's id (OpenAI-compatible providers: user)."
    )
    # Refused unless they ask for nothing: see `not_implemented`.
    tools: list[Any] | None = _not_implemented("[]")
    tool_choice: dict | None = _not_implemented('{"type": "none"} or {"type": "auto"}')
    thinking: dict | None = _not_implemented('{"type": "disabled"}')

    def unsupported_message(self) -> tuple[str, str] | None:
        for index, message in enumerate(self.messages):
            if isinstance(message.content, str):
                continue
            for position, block in enumerate(message.content):
                if isinstance(block, AnthropicToolBlock):
                    where = f"messages[{index}].content[{position}]"
                    return (
                        f"{where}.type",
                        f"The content block type '{block.type}' ({where}.type) is not "
                        "supported by this server (tool use is not implemented; send no "
                        "tool_use or tool_result blocks).",
                    )
        return None

    def generation_options(self) -> dict:
        """As ChatCompletionRequest's."""
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": tuple(self.stop_sequences or ()),
        }

    def sampling_hints(self) -> dict:
        """The sampling hints, as `gateway.pipeline.stream` takes them."""
        return {
            "top_k": self.top_k,
            "end_user_id": self.metadata.user_id if self.metadata else None,
        }

    def provider_messages(self) -> list[Message]:
        out = []
        if self.system:
            if isinstance(self.system, str):
                out.append(Message(role="system", content=self.system))
            else:
                text = "".join(b.text for b in self.system)
                out.append(Message(role="system", content=text, cache=_cache_ttl(self.system)))
        for m in self.messages:
            if isinstance(m.content, str):
                out.append(Message(role=m.role, content=m.content))
                continue
            text = "".join(b.text for b in m.content if isinstance(b, AnthropicTextBlock))
            images = []
            for b in m.content:
                if isinstance(b, AnthropicImageBlock):
                    s = b.source
                    url = s.url if s.type == "url" else f"data:{s.media_type};base64,{s.data}"
                    images.append(ImagePart(url=url or "", media_type=s.media_type or "image/png"))
            out.append(
                Message(
                    role=m.role, content=text, images=tuple(images), cache=_cache_ttl(m.content)
                )
            )
        return out


def _cache_ttl(blocks: list) -> str:
    """A message's prompt-cache breakpoint (providers.types.Message.cache): a breakpoint on
    any of its blocks marks the end of the message, the longest lifetime asked kept."""
    return cache_longest(
        b.cache_control.ttl or "5m" for b in blocks if getattr(b, "cache_control", None) is not None
    )


class ResponsesContentPart(_Body):
    """A part of an input message's content. Types other than text and images parse so
    that they are refused, naming the part."""

    type: str = Field(
        description="input_text and output_text (text), input_image (image_url: a URL or a "
        "data: URL), input_file (file_data: a data: URL; a PDF, Word, Excel or PowerPoint "
        "document or a text file is given to the model as text); any other (input_audio…) is "
        "refused with 400 unsupported_parameter."
    )
    text: str | None = None
    image_url: str | None = None
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = Field(default=None, description="Refused: send image_url or file_data.")
    file_url: str | None = Field(default=None, description="Refused: send file_data.")
    _inline: InlineFile | None = PrivateAttr(default=None)

    def inline(self, where: str) -> InlineFile:
        if self._inline is None:
            self._inline = InlineFile(self.filename, self.file_data or "", where)
        return self._inline


class ResponsesInputItem(_Body):
    """An item of `input`: a message. Other item types (function calls and their output,
    reasoning, item references…) parse so that they are refused, naming the item."""

    type: str = Field(
        default="message",
        description="message; any other type is refused with 400 unsupported_parameter (tool "
        "calls are not implemented, nor are references to items: follow a stored response "
        "with previous_response_id).",
    )
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[ResponsesContentPart] | None = None


class ResponsesReasoning(_Body):
    effort: str | None = _hint("As the provider names it: low, medium, high…")
    summary: str | None = _not_implemented()
    generate_summary: str | None = _not_implemented()


class ResponsesTextOptions(_Body):
    format: dict | None = _not_implemented('{"type": "text"}')
    verbosity: str | None = Field(default=None, description="Accepted and not used.")


_RESPONSES_TEXT_PARTS = ("input_text", "output_text")


class ResponsesRequest(_Request):
    """OpenAI's Responses API, text and images in, text out: the conversation in `input`, or
    its latest turn following a stored response (`previous_response_id`)."""

    not_implemented: ClassVar[dict[str, tuple]] = {
        "tools": ([],),
        "tool_choice": ("none", "auto"),
        "conversation": (),
        "prompt": (),
        "include": ([], ["reasoning.encrypted_content"]),
        "truncation": ("disabled",),
        "top_logprobs": (0,),
    }

    model: str = Field(min_length=1)
    input: str | list[ResponsesInputItem] = Field(
        min_length=1,
        description="A user message's text, or the conversation's messages, oldest first.",
    )
    instructions: str | None = Field(
        default=None, description="A system message put before the input."
    )
    stream: bool = False
    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2, description=_TEMPERATURE)
    top_p: float | None = Field(default=None, ge=0, le=1)
    metadata: dict[str, str] | None = Field(default=None, description="Returned as given.")
    # Sampling hints: see `sampling_hints`.
    reasoning: ResponsesReasoning | None = None
    user: str | None = _hint("Your end user's id (Anthropic: metadata.user_id).")
    safety_identifier: str | None = _hint("Your end user's id, as `user`.")
    text: ResponsesTextOptions | None = None
    parallel_tool_calls: bool | None = Field(
        default=None, description="Accepted and not used (no tools)."
    )
    store: bool | None = Field(
        default=None,
        description="Keep the answer (unless false): GET /v1/responses/{id} reads it back and "
        "previous_response_id follows it, for keys acting as the same user in the same "
        "workspace, until the server's retention ends.",
    )
    background: bool | None = Field(
        default=None,
        description="Answer on a worker: the response comes back at once, queued; GET "
        "/v1/responses/{id} reads it until it has finished, and POST "
        "/v1/responses/{id}/cancel stops it. Kept, so not with store false. With stream, "
        "its events come as the worker says them; GET /v1/responses/{id}?stream=true"
        "&starting_after=N takes them up again.",
    )
    previous_response_id: str | None = Field(
        default=None,
        description="A stored response this one follows: its chain's input and output come "
        "before this input (its instructions do not).",
    )
    # Refused unless they ask for nothing: see `not_implemented`.
    tools: list[Any] | None = _not_implemented("[]")
    tool_choice: str | dict | None = _not_implemented('"none" or "auto"')
    conversation: str | dict | None = _not_implemented()
    prompt: dict | None = _not_implemented()
    include: list[str] | None = _not_implemented('[] or ["reasoning.encrypted_content"]')
    truncation: str | None = _not_implemented('"disabled"')
    top_logprobs: int | None = _not_implemented("0", ge=0)

    def unsupported_message(self) -> tuple[str, str] | None:
        if self.background and self.store is False:
            return ("store", "A background response is kept: leave out store, or send true.")
        if self.text is not None and self.text.format not in (None, {"type": "text"}):
            return (
                "text.format",
                "The parameter 'text.format' is not supported by this server (structured "
                'output is not implemented: only {"type": "text"} is).',
            )
        if self.reasoning is not None:
            for name in ("summary", "generate_summary"):
                if getattr(self.reasoning, name) is not None:
                    return (
                        f"reasoning.{name}",
                        f"The parameter 'reasoning.{name}' is not supported by this server "
                        "(reasoning summaries are not implemented).",
                    )
        if isinstance(self.input, str):
            return None
        for index, item in enumerate(self.input):
            where = f"input[{index}]"
            if item.type != "message":
                return (
                    f"{where}.type",
                    f"The input item type '{item.type}' ({where}.type) is not supported by "
                    "this server (only messages are: tool calls are not implemented, nor "
                    "are references to items: follow a stored response with "
                    "previous_response_id).",
                )
            if item.role is None:
                return (f"{where}.role", f"The message {where} has no role.")
            for position, part in enumerate(item.content if isinstance(item.content, list) else ()):
                refused = _responses_part_refused(part, f"{where}.content[{position}]")
                if refused:
                    return refused
        return None

    def generation_options(self) -> dict:
        """As ChatCompletionRequest's."""
        return {
            "max_tokens": self.max_output_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": (),
        }

    def sampling_hints(self) -> dict:
        """The sampling hints, as `gateway.pipeline.stream` takes them."""
        return {
            "reasoning_effort": self.reasoning.effort if self.reasoning else None,
            "end_user_id": self.user or self.safety_identifier,
        }

    def provider_messages(self, context: list[dict] = ()) -> list[Message]:
        """The instructions, then `context` (the items of the stored responses this one
        follows: api.selectors.stored_response_context), then the input."""
        out = [Message(role="system", content=self.instructions)] if self.instructions else []
        items = [ResponsesInputItem.model_validate(item) for item in context]
        files = [
            *self._files_by_item(items, "previous_response_id's input"),
            *self._files_by_item(self._input(), "input"),
        ]
        for item, inline in zip([*items, *self._input()], files, strict=True):
            role = "system" if item.role == "developer" else item.role
            if not isinstance(item.content, list):
                out.append(Message(role=role, content=item.content or ""))
                continue
            text = "".join(p.text or "" for p in item.content if p.type in _RESPONSES_TEXT_PARTS)
            images = tuple(
                ImagePart(url=p.image_url) for p in item.content if p.type == "input_image"
            )
            if inline:
                text, file_images = _with_files(text, inline)
                images += file_images
            out.append(Message(role=role, content=text, images=images))
        return out

    def inline_files(self) -> list[InlineFile]:
        """The files sent in the input."""
        return [f for item in self._files_by_item(self._input(), "input") for f in item]

    @staticmethod
    def _files_by_item(items, name: str) -> list[list[InlineFile]]:
        return [
            [
                part.inline(f"{name}[{i}].content[{j}].file_data")
                for j, part in enumerate(item.content)
                if part.type == "input_file"
            ]
            if isinstance(item.content, list)
            else []
            for i, item in enumerate(items)
        ]

    def _input(self) -> list[ResponsesInputItem]:
        if isinstance(self.input, str):
            return [ResponsesInputItem(role="user", content=self.input)]
        return self.input

    def input_items(self, item_id: Callable[[], str]) -> list[dict]:
        """The input as OpenAI lists it (GET /v1/responses/{id}/input_items): messages with
        their ids and content parts, a text given as a string made a text part."""
        items = []
        for item in self._input():
            text_type = "output_text" if item.role == "assistant" else "input_text"
            if isinstance(item.content, list):
                parts = [_input_part(p) for p in item.content]
            else:
                parts = [{"type": text_type, "text": item.content or ""}]
            items.append(
                {
                    "id": item_id(),
                    "type": "message",
                    "role": item.role,
                    "status": "completed",
                    "content": parts,
                }
            )
        return items


def _input_part(part: ResponsesContentPart) -> dict:
    """A content part as OpenAI lists it among a response's input items."""
    if part.type == "input_image":
        return {"type": "input_image", "image_url": part.image_url}
    if part.type == "input_file":
        return {"type": "input_file", "filename": part.filename, "file_data": part.file_data}
    return {"type": part.type, "text": part.text}


def _responses_part_refused(part: ResponsesContentPart, where: str) -> tuple[str, str] | None:
    if part.type in _RESPONSES_TEXT_PARTS:
        if part.text is None:
            return (f"{where}.text", f"The content part {where} has no text.")
        return None
    if part.type == "input_image":
        if part.image_url:
            return None
        return (
            f"{where}.file_id" if part.file_id else f"{where}.image_url",
            f"The image {where} has no image_url: send the image as a URL or a data: URL "
            "(uploaded file ids are not supported by this server).",
        )
    if part.type == "input_file":
        return _file_refused(
            file_id=part.file_id, file_url=part.file_url, file_data=part.file_data, where=where
        )
    return (
        f"{where}.type",
        f"The content part type '{part.type}' ({where}.type) is not supported by this server "
        "(only input_text, output_text, input_image and input_file are).",
    )


class EmbeddingsRequest(_Body):
    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"

    @field_validator("input")
    @classmethod
    def _no_empty_strings(cls, value):
        items = [value] if isinstance(value, str) else value
        if any(not item for item in items):
            raise ValueError("input must not contain empty strings")
        return value

    @property
    def inputs(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def _where(loc: tuple, data) -> str:
    """An error's location as the client wrote it: without the labels pydantic adds for a
    union's types ("str", "list[…]") and the tag of a content block's `type`."""
    kept: list = []
    node, tag_next = data, False
    for step in loc:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
            tag_next = True
        elif not isinstance(node, dict) or "[" in step:
            continue  # a union type's label
        elif tag_next and node.get("type") == step:
            tag_next = False
            continue  # the block's tag, after its index
        else:
            node, tag_next = node.get(step), False
        kept.append(step)
    return ".".join(str(step) for step in kept)


def parse(schema: type[BaseModel], body: bytes) -> BaseModel:
    try:
        parsed = schema.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = exc.errors()
        if errors[0]["type"] == "json_invalid":
            raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
        # Of the first field's errors, the deepest: a value matching none of a union's types
        # has an error per type, and the one reaching furthest into the value is the one the
        # client meant (a bad content block, not "content should be a string").
        field = errors[0]["loc"][:1]
        first = max((e for e in errors if e["loc"][:1] == field), key=lambda e: len(e["loc"]))
        where = _where(first["loc"], json.loads(body or b"{}")) or "body"
        raise ApiError(
            400, "invalid_request", f"Invalid value for '{where}': {first['msg']}.", param=where
        ) from None
    if not isinstance(parsed, _Request):
        return parsed
    if name := parsed.unsupported_parameter():
        raise ApiError(
            400,
            "unsupported_parameter",
            f"The parameter '{name}' is not supported by this server"
            f"{_UNSUPPORTED_HINTS.get(name, '')}.",
            param=name,
        )
    if refused := parsed.unsupported_message():
        param, message = refused
        raise ApiError(400, "unsupported_parameter", message, param=param)
    return parsed


_UNSUPPORTED_HINTS = {
    "tools": " (tool calls are not implemented; send no tools)",
    "functions": " (function calls are not implemented; send no functions)",
    "tool_choice": " (tool calls are not implemented)",
    "function_call": " (function calls are not implemented)",
    "response_format": ' (only {"type": "text"} is)',
    "n": " (one choice per request: n must be 1)",
    "modalities": ' (only ["text"] is)',
    "thinking": ' (only {"type": "disabled"} is)',
    "conversation": " (conversations are not stored: follow a response with "
    "previous_response_id, or send the whole conversation in input)",
    "prompt": " (stored prompts are not implemented: send the prompt in instructions)",
    "include": " (nothing more can be included)",
    "truncation": ' (the input is never truncated: only "disabled" is)',
    "top_logprobs": " (log probabilities are not implemented)",
}
