"""Prices per model: an operator's override first, then the genai-prices tables.

genai-prices names providers its own way; `GENAI_PROVIDER_IDS` maps our provider kinds to
them. Kinds that run on the operator's hardware are free; an OpenAI-compatible server is
unknown unless an override prices it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from genai_prices import Usage, data_snapshot
from genai_prices.types import TieredPrices

from providers.routing import GenerationCache

from .models import ModelPriceOverride

logger = logging.getLogger(__name__)

# Budgets, rate limits and price overrides: bumped on every change (billing/apps.py connects
# the model signals), so per-process copies of them are never stale across processes.
BILLING_RULES_GENERATION = "billing:rules:generation"
_price_sources = GenerationCache(BILLING_RULES_GENERATION, ttl=60.0)
_unpriced_warned: set[tuple[str, str]] = set()

GENAI_PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "mistral": "mistral",
    "groq": "groq",
    "xai": "x-ai",
    "deepseek": "deepseek",
    "openrouter": "openrouter",
    "together": "together",
}
FREE_KINDS = frozenset({"ollama", "demo"})
MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    source: str  # "override" | "genai-prices" | "free"


@dataclass(frozen=True, slots=True)
class Cost:
    amount: Decimal
    known: bool  # False: no price was found and the amount is 0


def prices_load() -> None:
    """Load the price catalogue now rather than on the first price lookup (server start-up)."""
    data_snapshot.get_snapshot()


def _genai_model(provider_kind: str, model: str):
    provider_id = GENAI_PROVIDER_IDS.get(provider_kind)
    if provider_id is None:
        return None
    try:
        return data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None


def _base(value) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, TieredPrices):
        return Decimal(value.base)
    return Decimal(value)


def _price_source(provider_kind: str, model: str):
    """("override", row) | ("free", None) | ("genai", (provider, info)) | None, cached per
    process until an override changes."""

    def load():
        override = ModelPriceOverride.objects.filter(
            provider_kind=provider_kind, model=model
        ).first()
        if override is not None:
            return ("override", override)
        if provider_kind in FREE_KINDS:
            return ("free", None)
        found = _genai_model(provider_kind, model)
        return None if found is None else ("genai", found)

    return _price_sources.get_or_load((provider_kind, model), load)


def price_lookup(*, provider_kind: str, model: str) -> Price | None:
    """The per-million-token prices for a model, or None when nobody knows them."""
    override = ModelPriceOverride.objects.filter(provider_kind=provider_kind, model=model).first()
    if override is not None:
        return Price(override.input_per_mtok, override.output_per_mtok, "override")
    if provider_kind in FREE_KINDS:
        return Price(Decimal(0), Decimal(0), "free")
    found = _genai_model(provider_kind, model)
    if found is None:
        return None
    _provider, info = found
    prices = info.get_prices(datetime.now(tz=UTC))
    return Price(_base(prices.input_mtok), _base(prices.output_mtok), "genai-prices")


CostRule = Callable[..., Cost]


def cost_rule(*, provider_kind: str, model: str) -> CostRule:
    """How calls to a model are priced: `rule(input_tokens, output_tokens, **parts) -> Cost`,
    where the input total includes the tokens read from and written to the provider's prompt
    cache, given as the keywords `cache_read_tokens`, `cache_write_tokens` and (of those
    written) `cache_write_1h_tokens` (providers.types.Usage), each part priced at its own
    rate when the model has one.
    Looking the price up may query the database; the returned rule never does, so a caller
    can price on its event loop with a rule fetched on a database thread."""
    source = _price_source(provider_kind, model)
    if source is None:

        def unknown(input_tokens, output_tokens, **parts):
            if (provider_kind, model) not in _unpriced_warned:  # once per process, not per call
                _unpriced_warned.add((provider_kind, model))
                logger.warning("no price for %s/%s: cost recorded as 0", provider_kind, model)
            return Cost(Decimal(0).quantize(MICRO), False)

        return unknown
    if source[0] == "free":
        return lambda *tokens, **parts: Cost(Decimal(0).quantize(MICRO), True)
    if source[0] == "override":
        override = source[1]

        price_in = override.input_per_mtok
        price_read = _or(override.cache_read_per_mtok, price_in)
        price_write = _or(override.cache_write_per_mtok, price_in)
        price_write_1h = _or(override.cache_write_1h_per_mtok, price_write)

        def overridden(input_tokens, output_tokens, **parts):
            read, written, hour = _cache_parts(input_tokens, **parts)
            amount = (
                Decimal(input_tokens - read - written) * price_in
                + Decimal(read) * price_read
                + Decimal(written - hour) * price_write
                + Decimal(hour) * price_write_1h
                + Decimal(output_tokens) * override.output_per_mtok
            ) / MILLION
            return Cost(amount.quantize(MICRO, ROUND_HALF_UP), True)

        return overridden
    provider, info = source[1]

    def listed(input_tokens, output_tokens, **parts):
        # genai-prices applies tiers (e.g. long-context prices) when given the real usage, and
        # prices the cached parts of the input at the model's cache prices (the input price,
        # or for hour-long writes the write price, when it has none).
        read, written, hour = _cache_parts(input_tokens, **parts)
        usage = Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=read,
            cache_write_tokens=written,
            cache_write_1h_tokens=hour or None,
        )
        calc = info.calc_price(usage, provider)
        return Cost(Decimal(calc.total_price).quantize(MICRO, ROUND_HALF_UP), True)

    return listed


def _or(price: Decimal | None, default: Decimal) -> Decimal:
    return default if price is None else price


def _cache_parts(
    input_tokens: int,
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> tuple[int, int, int]:
    """(read, written, written for an hour): the cached parts of an input total, never more
    than it (a provider's report is not trusted to add up)."""
    read = min(max(cache_read_tokens, 0), input_tokens)
    written = min(max(cache_write_tokens, 0), input_tokens - read)
    return read, written, min(max(cache_write_1h_tokens, 0), written)


def cost_compute(
    *,
    provider_kind: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    **parts: int,
) -> Cost:
    """The cost of a call in USD (6 decimals) and whether a price was known. `parts`: the
    cached parts of the input, as `cost_rule`'s rules take them."""
    return cost_rule(provider_kind=provider_kind, model=model)(input_tokens, output_tokens, **parts)


def cost_calculate(
    *, provider_kind: str, model: str, input_tokens: int, output_tokens: int
) -> Decimal:
    """USD cost; 0 when the price is unknown (see `cost_compute` for the flag)."""
    return cost_compute(
        provider_kind=provider_kind,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    ).amount
