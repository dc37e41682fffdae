"""Adapters, one module per wire protocol, and the registry mapping a credential's kind to
its adapter. Provider-specific code lives only in these modules."""

from __future__ import annotations

from .anthropic import AnthropicAdapter
from .base import Adapter
from .demo import DemoAdapter
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai_compat import ADAPTERS as OPENAI_COMPATIBLE_ADAPTERS

REGISTRY: dict[str, Adapter] = {
    cls.kind: cls()
    for cls in [
        *OPENAI_COMPATIBLE_ADAPTERS,
        AnthropicAdapter,
        GeminiAdapter,
        OllamaAdapter,
        DemoAdapter,
    ]
}


def adapter_for(kind: str) -> Adapter:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise LookupError(f"No adapter for provider kind {kind!r}") from None


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, adapter.label) for kind, adapter in REGISTRY.items()]


__all__ = ["REGISTRY", "Adapter", "adapter_for", "kind_choices"]
