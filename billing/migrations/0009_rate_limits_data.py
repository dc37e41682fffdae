"""Before rate limits were unique per target, two rows could limit the same user,
workspace or key (or be the default of a scope), and the one read last won. They are
merged into the oldest row with the strictest limit of each kind, the one that wins now."""

from django.db import migrations

TARGETS = {"user": "user_id", "workspace": "workspace_id", "api_key": "api_key_id"}


def _strictest(limits):
    return min((limit for limit in limits if limit is not None), default=None)


def duplicates_merged(apps, schema_editor):
    RateLimit = apps.get_model("billing", "RateLimit")
    groups = {}
    for row in RateLimit.objects.order_by("id"):
        own = TARGETS.get(row.scope)
        targets = {attribute: getattr(row, attribute) for attribute in TARGETS.values()}
        if own is None:
            continue
        if targets[own] is None:
            if any(targets.values()):
                continue  # a target of another scope: not unique-checked, ignored by lookups
            groups.setdefault((row.scope, None), []).append(row)
        else:
            groups.setdefault((row.scope, targets[own]), []).append(row)
    for rows in groups.values():
        if len(rows) < 2:
            continue
        kept, *others = rows
        kept.rpm = _strictest(row.rpm for row in rows)
        kept.tpm = _strictest(row.tpm for row in rows)
        kept.save(update_fields=["rpm", "tpm"])
        RateLimit.objects.filter(pk__in=[row.pk for row in others]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_budget_rules"),
    ]

    operations = [migrations.RunPython(duplicates_merged, migrations.RunPython.noop)]
