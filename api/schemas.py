"""Request bodies of the /v1 API. Unknown fields are ignored, as OpenAI and Anthropic do;
wrong types are refused with a message that names the field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from providers.types import ImagePart, Message

from .errors import ApiError


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ImageUrl(_Body):
    url: str


class ImageUrlPart(_Body):
    type: Literal["image_url"]
    image_url: ImageUrl


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Annotated[TextPart | ImageUrlPart, Field(discriminator="type")]] | None = (
        None
    )


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1)
    user: str | None = None

    def provider_messages(self) -> list[Message]:
        out = []
        for m in self.messages:
            role = "system" if m.role == "developer" else m.role
            if isinstance(m.content, list):
                text = "".join(p.text for p in m.content if isinstance(p, TextPart))
                images = tuple(
                    ImagePart(url=p.image_url.url) for p in m.content if isinstance(p, ImageUrlPart)
                )
                out.append(Message(role=role, content=text, images=images))
            else:
                out.append(Message(role=role, content=m.content or ""))
        return out

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class AnthropicTextBlock(_Body):
    type: Literal["text"]
    text: str


class AnthropicImageSource(_Body):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class AnthropicImageBlock(_Body):
    type: Literal["image"]
    source: AnthropicImageSource


class AnthropicMessage(_Body):
    role: Literal["user", "assistant"]
    content: (
        str | list[Annotated[AnthropicTextBlock | AnthropicImageBlock, Field(discriminator="type")]]
    )


class AnthropicMessagesRequest(_Body):
    model: str = Field(min_length=1)
    max_tokens: int = Field(gt=0)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[AnthropicTextBlock] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None

    def provider_messages(self) -> list[Message]:
        out = []
        if self.system:
            text = (
                self.system
                if isinstance(self.system, str)
                else "".join(b.text for b in self.system)
            )
            out.append(Message(role="system", content=text))
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
            out.append(Message(role=m.role, content=text, images=tuple(images)))
        return out


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


def parse(schema: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return schema.model_validate_json(body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "json_invalid":
            raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
        raise ApiError(
            400, "invalid_request", f"Invalid value for '{where}': {first['msg']}.", param=where
        ) from None
