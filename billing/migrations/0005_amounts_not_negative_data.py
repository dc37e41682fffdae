"""Negative prices, limits and allowances were accepted once; they become 0 before the
constraints that forbid them. A negative limit already refused everything, as 0 does; a
negative price turned spending into credit, 0 makes the model free."""

from django.db import migrations
from django.db.models import Q

FIELDS = {
    "Budget": ["cost_limit", "token_limit"],
    "ModelPriceOverride": ["input_per_mtok", "output_per_mtok"],
    "Plan": [
        "monthly_price",
        "included_cost",
        "included_tokens",
        "max_budget_cost",
        "max_budget_tokens",
    ],
}


def negatives_to_zero(apps, schema_editor):
    for model_name, fields in FIELDS.items():
        model = apps.get_model("billing", model_name)
        for field in fields:
            model.objects.filter(Q(**{f"{field}__lt": 0})).update(**{field: 0})


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_usage_event_uid"),
    ]

    operations = [migrations.RunPython(negatives_to_zero, migrations.RunPython.noop)]
