from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from billing.models import UsageEvent
from billing.pricing import price_lookup
from billing.selectors import usage_total_for_references
from billing.services import ausage_record
from billing.tokens import tokens_estimate
from tests.billing.conftest import record_call


def record(workspace, user, **overrides):
    values = dict(input_tokens=1000, output_tokens=500, ttft_ms=120, duration_ms=900)
    values.update(overrides)
    return record_call(workspace, user, **values)


def test_a_streamed_call_costs_the_provider_reported_usage_times_the_price(workspace, owner):
    event = record(workspace, owner, input_tokens=2000, output_tokens=700)

    price = price_lookup(provider_kind="openai", model="gpt-4o-mini")
    expected = (2000 * price.input_per_mtok + 700 * price.output_per_mtok) / Decimal(10**6)
    event.refresh_from_db()
    assert event.cost == expected.quantize(Decimal("0.000001"))
    assert event.price_known and not event.estimated


def test_a_stopped_stream_is_billed_for_what_was_produced(workspace, owner):
    full = record(workspace, owner, output_tokens=500)
    stopped = record(workspace, owner, output_tokens=120, status="stopped")

    assert stopped.status == "stopped"
    assert 0 < stopped.cost < full.cost


def test_an_upstream_without_usage_gets_a_counted_estimate_marked_as_such(workspace, owner):
    answer = "The quick brown fox jumps over the lazy dog."
    event = record(workspace, owner, output_tokens=tokens_estimate(text=answer), estimated=True)

    event.refresh_from_db()
    assert event.estimated is True
    assert event.output_tokens == tokens_estimate(text=answer) > 0
    assert event.cost > 0


def test_a_deleted_credential_leaves_the_ledger_row_alone(workspace, owner):
    event = record(workspace, owner, credential_id=987654)

    assert UsageEvent.objects.get(pk=event.pk).credential_id == 987654


def test_costs_are_summed_by_reference(workspace, owner):
    a = record(workspace, owner, reference="message:1")
    b = record(workspace, owner, reference="message:1", estimated=True)
    c = record(workspace, owner, reference="message:2")

    totals = usage_total_for_references(["message:1", "message:2", "message:3"])

    assert totals["message:1"]["cost"] == a.cost + b.cost
    assert totals["message:1"]["estimated"] is True
    assert totals["message:2"]["cost"] == c.cost and totals["message:2"]["estimated"] is False
    assert "message:3" not in totals


@pytest.mark.django_db(transaction=True)
async def test_the_async_variant_records_from_async_code(workspace, owner):
    event = await ausage_record(
        workspace_id=workspace.id,
        user_id=owner.id,
        credential_id=None,
        provider_kind="ollama",
        model="llama3",
        input_tokens=10,
        output_tokens=10,
        estimated=False,
        status="client_gone",
        ttft_ms=None,
        duration_ms=5,
        source="api",
    )

    assert await UsageEvent.objects.filter(pk=event.pk, status="client_gone").aexists()
    # The worker thread's connection would otherwise outlive the test database.
    await database_sync_to_async(connections.close_all)()
