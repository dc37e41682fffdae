"""billing/migrations: what they do to rows that exist when they run."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _migrate_to_latest(targets):
    """Migrate to `targets`, then on to the latest state the rest of the suite expects; the
    apps of `targets` are returned (the models as the migration under test left them)."""
    _migrate(targets)
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_negative_amounts_saved_before_become_zero():
    apps = _migrate([("billing", "0004_usage_event_uid")])
    try:
        Workspace = apps.get_model("workspaces", "Workspace")
        workspace = Workspace.objects.create(name="Old", slug="old")
        budget = apps.get_model("billing", "Budget").objects.create(
            scope="workspace", workspace=workspace, cost_limit=Decimal(-5), token_limit=-3
        )
        price = apps.get_model("billing", "ModelPriceOverride").objects.create(
            provider_kind="openai", model="m", input_per_mtok=-5, output_per_mtok=2
        )
        plan = apps.get_model("billing", "Plan").objects.create(
            name="Odd", slug="odd", monthly_price=-10, included_cost=3
        )
    finally:
        apps = _migrate_to_latest([("billing", "0006_amounts_not_negative")])

    budget = apps.get_model("billing", "Budget").objects.get(pk=budget.pk)
    price = apps.get_model("billing", "ModelPriceOverride").objects.get(pk=price.pk)
    plan = apps.get_model("billing", "Plan").objects.get(pk=plan.pk)
    assert (budget.cost_limit, budget.token_limit) == (0, 0)
    assert (price.input_per_mtok, price.output_per_mtok) == (0, 2)
    assert (plan.monthly_price, plan.included_cost) == (0, 3)


@pytest.mark.django_db(transaction=True)
def test_thresholds_come_within_range_and_typed_provider_kinds_are_matched():
    apps = _migrate([("billing", "0006_amounts_not_negative")])
    try:
        workspace = apps.get_model("workspaces", "Workspace").objects.create(name="O", slug="o")
        Budget = apps.get_model("billing", "Budget")
        high = Budget.objects.create(
            scope="workspace", workspace=workspace, cost_limit=1, soft_threshold_percent=500
        )
        zero = Budget.objects.create(
            scope="api_key", workspace=workspace, api_key_id=4, soft_threshold_percent=0
        )
        Price = apps.get_model("billing", "ModelPriceOverride")
        typed = Price.objects.create(
            provider_kind="OpenAI ", model="m", input_per_mtok=1, output_per_mtok=1
        )
        unknown = Price.objects.create(
            provider_kind="acme", model="m", input_per_mtok=1, output_per_mtok=1
        )
    finally:
        apps = _migrate_to_latest([("billing", "0008_budget_rules")])

    Budget = apps.get_model("billing", "Budget")
    Price = apps.get_model("billing", "ModelPriceOverride")
    assert Budget.objects.get(pk=high.pk).soft_threshold_percent == 100
    assert Budget.objects.get(pk=zero.pk).soft_threshold_percent == 1
    assert Price.objects.get(pk=typed.pk).provider_kind == "openai"
    assert Price.objects.get(pk=unknown.pk).provider_kind == "acme"


@pytest.mark.django_db(transaction=True)
def test_rate_limits_for_the_same_target_are_merged_into_the_strictest():
    apps = _migrate([("billing", "0008_budget_rules")])
    try:
        workspace = apps.get_model("workspaces", "Workspace").objects.create(name="O", slug="o")
        RateLimit = apps.get_model("billing", "RateLimit")
        kept = RateLimit.objects.create(scope="workspace", workspace=workspace, rpm=100)
        RateLimit.objects.create(scope="workspace", workspace=workspace, rpm=2, tpm=9000)
        default = RateLimit.objects.create(scope="user", tpm=500)
        RateLimit.objects.create(scope="user", tpm=800)
        stray = RateLimit.objects.create(scope="user", workspace=workspace, rpm=0)
    finally:
        apps = _migrate_to_latest([("billing", "0010_rate_limits_unique")])

    RateLimit = apps.get_model("billing", "RateLimit")
    limits = {row.pk: (row.rpm, row.tpm) for row in RateLimit.objects.all()}
    assert limits == {kept.pk: (2, 9000), default.pk: (None, 500), stray.pk: (0, None)}
