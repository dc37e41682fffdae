from datetime import UTC, datetime
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


def _listed(provider_id, model):
    """The genai-prices table's current prices for a model (base tier)."""
    provider, info = genai_prices.data_snapshot.get_snapshot().find_provider_model(
        model, None, provider_id, None
    )
    prices = info.get_prices(datetime.now(tz=UTC))
    return {
        name: Decimal(getattr(value, "base", value))
        for name in (
            "input_mtok",
            "cache_read_mtok",
            "cache_write_mtok",
            "cache_write_1h_mtok",
            "output_mtok",
        )
        if (value := getattr(prices, name)) is not None
    }


@pytest.mark.django_db
def test_prompt_tokens_read_from_the_cache_cost_the_cache_price():
    listed = _listed("openai", "gpt-4o-mini")
    assert listed["cache_read_mtok"] < listed["input_mtok"]

    full = cost_compute(
        provider_kind="openai", model="gpt-4o-mini", input_tokens=10_000, output_tokens=300
    )
    cached = cost_compute(
        provider_kind="openai",
        model="gpt-4o-mini",
        input_tokens=10_000,
        output_tokens=300,
        cache_read_tokens=8_000,
    )

    expected = (
        2_000 * listed["input_mtok"]
        + 8_000 * listed["cache_read_mtok"]
        + 300 * listed["output_mtok"]
    ) / Decimal(10**6)
    assert cached.amount == expected.quantize(Decimal("0.000001"))
    assert cached.amount < full.amount


@pytest.mark.django_db
def test_prompt_tokens_written_to_the_cache_cost_the_cache_write_price():
    listed = _listed("anthropic", "claude-sonnet-4-5")
    assert listed["cache_write_mtok"] > listed["input_mtok"]

    cost = cost_compute(
        provider_kind="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=5_000,
        output_tokens=100,
        cache_read_tokens=1_000,
        cache_write_tokens=3_000,
    )

    expected = (
        1_000 * listed["input_mtok"]
        + 1_000 * listed["cache_read_mtok"]
        + 3_000 * listed["cache_write_mtok"]
        + 100 * listed["output_mtok"]
    ) / Decimal(10**6)
    assert cost.amount == expected.quantize(Decimal("0.000001"))


def house_model_cost(cache_read_price: str, **tokens):
    """The cost of a call to an overridden model at $2 in, $8 out, `cache_read_price` for
    what is read from the prompt cache, and no write price; one million input tokens."""
    ModelPriceOverride.objects.create(
        provider_kind="openai_compatible",
        model="house-model",
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("8"),
        cache_read_per_mtok=Decimal(cache_read_price),
    )
    return cost_compute(
        provider_kind="openai_compatible",
        model="house-model",
        input_tokens=1_000_000,
        output_tokens=0,
        **tokens,
    )


@pytest.mark.django_db
def test_an_override_prices_cache_reads_and_writes_or_charges_them_as_input():
    cost = house_model_cost("0.5", cache_read_tokens=600_000, cache_write_tokens=100_000)

    # 300k plain and 100k written (no write price: the input price) at 2, 600k read at 0.5.
    assert cost.amount == Decimal("1.100000") and cost.known


@pytest.mark.django_db
@pytest.mark.parametrize(
    "hour_price, expected",
    [
        # 300k plain at 2, 600k read at 0.2, 40k written for 5 minutes at 2.5 and 60k for an
        # hour at 4.
        ("4", "0.12 + 0.60 + 0.10 + 0.24"),
        # No hour-long price: every write at the write price.
        (None, "0.12 + 0.60 + 0.25"),
    ],
)
def test_an_override_prices_writes_kept_an_hour_at_their_own_price(hour_price, expected):
    ModelPriceOverride.objects.create(
        provider_kind="anthropic",
        model="house-claude",
        input_per_mtok=Decimal("2"),
        output_per_mtok=Decimal("8"),
        cache_read_per_mtok=Decimal("0.2"),
        cache_write_per_mtok=Decimal("2.5"),
        cache_write_1h_per_mtok=None if hour_price is None else Decimal(hour_price),
    )
    cost = cost_compute(
        provider_kind="anthropic",
        model="house-claude",
        input_tokens=1_000_000,
        output_tokens=0,
        cache_read_tokens=600_000,
        cache_write_tokens=100_000,
        cache_write_1h_tokens=60_000,
    )
    assert cost.amount == sum(Decimal(part) for part in expected.split(" + "))


@pytest.mark.django_db
def test_cache_counts_beyond_the_input_total_are_not_trusted():
    cost = house_model_cost("0", cache_read_tokens=400_000, cache_write_tokens=5_000_000)

    # The write count is cut to what is left of the input: 600k at the input price.
    assert cost.amount == Decimal("1.200000")


@pytest.mark.django_db
def test_writes_kept_an_hour_cost_the_hour_long_write_price():
    listed = _listed("anthropic", "claude-sonnet-4-5")
    hour_price = listed["cache_write_1h_mtok"]
    assert hour_price > listed["cache_write_mtok"]

    cost = cost_compute(
        provider_kind="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=5_000,
        output_tokens=0,
        cache_write_tokens=4_000,
        cache_write_1h_tokens=3_000,
    )

    expected = (
        1_000 * listed["input_mtok"] + 1_000 * listed["cache_write_mtok"] + 3_000 * hour_price
    ) / Decimal(10**6)
    assert cost.amount == expected.quantize(Decimal("0.000001"))
