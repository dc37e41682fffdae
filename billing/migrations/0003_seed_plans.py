from decimal import Decimal

from django.db import migrations

PLANS = [
    {
        "slug": "free",
        "name": "Free",
        "description": "For trying AURAX out.",
        "monthly_price": Decimal("0"),
        "included_cost": Decimal("1.00"),
        "max_budget_cost": Decimal("100.00"),
        "max_budget_tokens": 50_000_000,
        "default_rpm": 20,
        "default_tpm": 40_000,
        "position": 0,
    },
    {
        "slug": "pro",
        "name": "Pro",
        "description": "For individuals and small teams.",
        "monthly_price": Decimal("20.00"),
        "included_cost": Decimal("20.00"),
        "max_budget_cost": Decimal("1000.00"),
        "max_budget_tokens": 500_000_000,
        "default_rpm": 60,
        "default_tpm": 200_000,
        "position": 1,
    },
    {
        "slug": "team",
        "name": "Team",
        "description": "For organisations: no budget cap, higher rate limits.",
        "monthly_price": Decimal("99.00"),
        "included_cost": Decimal("100.00"),
        "max_budget_cost": None,
        "max_budget_tokens": None,
        "default_rpm": 300,
        "default_tpm": 1_000_000,
        "position": 2,
    },
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in PLANS:
        Plan.objects.get_or_create(slug=plan["slug"], defaults=plan)


def unseed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    Plan.objects.filter(
        slug__in=[p["slug"] for p in PLANS], subscriptions__isnull=True, invoices__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_plans_invoices")]

    operations = [migrations.RunPython(seed, unseed)]
