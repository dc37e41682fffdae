"""The provider layer's contract: what every adapter takes, yields and raises.

Everything above `providers/` (the gateway pipeline, chat, the /v1 API, batches) speaks only
these types; nothing above it knows a vendor's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from django.utils.translation import gettext_noop

# The taxonomy's messages are stored with a failed answer as said (in the server's language)
# and translated when shown (chat.selectors.message_error_text): marked here for the catalog.

# --- Requests ----------------------------------------------------------------------------

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image in a user message: a data: URL or an https URL."""

    url: str
    media_type: str = "image/png"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()
    # A prompt-cache breakpoint after this message, kept "5m" or "1h" (Anthropic's
    # `cache_control`); "" none. Providers that cache prompts by themselves ignore it.
    cache: str = ""


def cache_longest(lifetimes) -> str:
    """The longest of prompt-cache lifetimes ("5m", "1h"; "" none asked), "" when none is."""
    asked = set(lifetimes) - {""}
    return "1h" if "1h" in asked else "5m" if asked else ""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One call to a model. The sampling hints after `stop` are passed on only by the
    adapters whose vendor's API has that setting, in that API's own field (docs/providers.md,
    "Sampling hints"); the others drop them. None: not asked for, and nothing is sent."""

    model: str  # the provider's own model id, e.g. "gpt-4o-mini"
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_k: int | None = None
    logit_bias: dict[str, int] | None = None  # token id (as a string) -> bias, -100 to 100
    reasoning_effort: str | None = None  # "low", "medium", "high"… as the caller said it
    # The caller's own end-user id (OpenAI's `user`, Anthropic's `metadata.user_id`), for the
    # provider's abuse monitoring; never the AURAX account.
    end_user_id: str | None = None
    # Provider-neutral extras passed through where a protocol supports them.
    extra: dict = field(default_factory=dict)


# --- Normalized stream events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens as the provider reported them. `input_tokens` counts every prompt token, those
    read from or written to the provider's prompt cache included; `output_tokens` counts every
    generated token, reasoning included. The others are parts of those totals, priced
    differently (reads cheaper, writes dearer) or only reported; `cache_write_1h_tokens` is
    the part of the writes kept an hour (Anthropic), dearer still."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    type: Literal["usage"] = "usage"


FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "error", "cancelled"]


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason
    type: Literal["finish"] = "finish"


StreamEvent = TextDelta | Usage | Finish


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole (non-streamed) answer."""

    text: str
    finish_reason: FinishReason
    usage: Usage | None
    provider_kind: str = ""  # who answered (the pipeline's fallback may pick another)


# --- Error taxonomy ----------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every error an adapter raises. `str(error)` is safe to show a user: it never
    contains a credential. `status` is the HTTP status the /v1 API answers with."""

    code = "upstream_error"
    retryable = False
    status = 502
    default_message = gettext_noop("The model provider returned an error.")

    def __init__(self, message: str | None = None, *, retry_after: float | None = None):
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)


class ProviderAuthenticationError(ProviderError):
    code = "authentication"
    # Not 401: on /v1 that says the caller's own key is wrong, and this is the provider
    # refusing the key an administrator saved (an upstream failure, as the API docs say).
    status = 502
    default_message = gettext_noop("The provider rejected the API key.")


class ProviderRateLimited(ProviderError):
    code = "rate_limited"
    retryable = True
    status = 429
    default_message = gettext_noop("The provider is rate limiting requests.")


class ProviderOverloaded(ProviderError):
    code = "overloaded"
    retryable = True
    status = 503
    default_message = gettext_noop("The provider is overloaded or unavailable.")


class ProviderTimeout(ProviderError):
    code = "timeout"
    retryable = True
    status = 504
    default_message = gettext_noop("The provider did not answer in time.")


class ProviderBadRequest(ProviderError):
    code = "bad_request"
    status = 400
    default_message = gettext_noop("The provider refused the request as invalid.")


class ProviderContextTooLong(ProviderBadRequest):
    code = "context_too_long"
    default_message = gettext_noop("The conversation is too long for this model's context window.")


class ProviderContentFiltered(ProviderError):
    code = "content_filtered"
    status = 400
    default_message = gettext_noop("The provider's content filter blocked this request.")


class ProviderUpstreamError(ProviderError):
    code = "upstream_error"
    retryable = True
    status = 502
    default_message = gettext_noop("The model provider returned an error.")


class ProviderUnreachable(ProviderUpstreamError):
    # A code of its own: a credential's last check keeps only the code, and its status
    # must say what the test said.
    code = "unreachable"
    default_message = "Could not connect to the provider."


def error_message_for(code: str) -> str:
    """The taxonomy's message for an error code (a credential's last check keeps only the
    code); the generic one for a code it does not know."""
    todo = [ProviderError]
    while todo:
        kind = todo.pop()
        if kind.code == code:
            return kind.default_message
        todo.extend(kind.__subclasses__())
    return ProviderError.default_message


# --- Call targets and catalog entries ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where one call goes: a credential resolved for an adapter. `api_key` is excluded from
    repr so a Target can be logged or shown in a traceback without leaking the key."""

    kind: str
    base_url: str
    api_key: str = field(default="", repr=False)
    credential_id: int | None = None
    name: str = ""
    # False for base URLs set by non-admin users: the adapter re-checks the resolved address
    # at call time (the check at save time alone would miss DNS changes).
    allow_private_network: bool = True


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model a credential offers, as listed by the provider."""

    id: str
    display_name: str = ""
    context_window: int | None = None
