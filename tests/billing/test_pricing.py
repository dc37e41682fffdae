from decimal import Decimal

import genai_prices
import pytest

from billing.models import ModelPriceOverride
from billing.pricing import cost_calculate, cost_compute, price_lookup


@pytest.mark.django_db
def test_cost_is_reported_usage_times_the_genai_prices_price():
    price = price_lookup(provider_kind="openai", model="gpt-4o-mini")
    assert price is not None and price.source == "genai-prices"
    assert price.input_per_mtok > 0 and price.output_per_mtok > 0

    cost = cost_calculate(
        provider_kind="openai", model="gpt-4o-mini", input_tokens=12_345, output_tokens=6_789
    )

    expected = (12_345 * price.input_per_mtok + 6_789 * price.output_per_mtok) / Decimal(10**6)
    assert cost == expected.quantize(Decimal("0.000001"))
    reference = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=12_345, output_tokens=6_789),
        "gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert cost == Decimal(reference).quantize(Decimal("0.000001"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind,model",
    [("anthropic", "claude-3-5-haiku-latest"), ("gemini", "gemini-2.0-flash"), ("xai", "grok-3")],
)
def test_our_provider_kinds_map_to_genai_prices_providers(kind, model):
    assert price_lookup(provider_kind=kind, model=model) is not None


@pytest.mark.django_db
def test_an_override_beats_genai_prices():
    ModelPriceOverride.objects.create(
        provider_kind="openai",
        model="gpt-4o-mini",
        input_per_mtok=Decimal("1.00"),
        output_per_mtok=Decimal("2.00"),
    )

    price = price_lookup(provider_kind="openai", model="gpt-4o-mini")
    cost = cost_calculate(
        provider_kind="openai", model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=500_000
    )

    assert price.source == "override"
    assert cost == Decimal("2.000000")


@pytest.mark.django_db
def test_an_unknown_model_costs_zero_and_is_flagged():
    result = cost_compute(
        provider_kind="openai_compatible", model="my-llama", input_tokens=100, output_tokens=100
    )

    assert price_lookup(provider_kind="openai_compatible", model="my-llama") is None
    assert result.amount == 0 and result.known is False


@pytest.mark.django_db
def test_local_models_are_free_and_known():
    result = cost_compute(provider_kind="ollama", model="llama3", input_tokens=10, output_tokens=10)

    assert result.amount == 0 and result.known is True
