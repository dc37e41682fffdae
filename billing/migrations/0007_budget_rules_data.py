"""Values the admin accepted before it checked them: a soft threshold outside 1-100% is
brought within it, and a price override's provider typed by hand ("OpenAI ") becomes the
provider kind it meant, when that kind is known and has no price for the model yet."""

from django.db import migrations

from providers.adapters import REGISTRY


def values_within_rules(apps, schema_editor):
    Budget = apps.get_model("billing", "Budget")
    Budget.objects.filter(soft_threshold_percent__lt=1).update(soft_threshold_percent=1)
    Budget.objects.filter(soft_threshold_percent__gt=100).update(soft_threshold_percent=100)

    ModelPriceOverride = apps.get_model("billing", "ModelPriceOverride")
    for override in ModelPriceOverride.objects.exclude(provider_kind__in=list(REGISTRY)):
        kind = override.provider_kind.strip().lower()
        taken = ModelPriceOverride.objects.filter(provider_kind=kind, model=override.model)
        if kind in REGISTRY and not taken.exists():
            override.provider_kind = kind
            override.save(update_fields=["provider_kind"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_amounts_not_negative"),
    ]

    operations = [migrations.RunPython(values_within_rules, migrations.RunPython.noop)]
