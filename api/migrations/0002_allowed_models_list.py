"""`allowed_models` could be saved as a JSON string in the admin ("fake-small"), which the
key then treated as a list of letters; such a value becomes the list of names it spells."""

import re

from django.db import migrations


def allowed_models_as_lists(apps, schema_editor):
    ApiKey = apps.get_model("api", "ApiKey")
    for key in ApiKey.objects.only("allowed_models").iterator():
        value = key.allowed_models
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            continue
        if isinstance(value, str):
            names = [name.strip() for name in re.split(r"[,\n]", value) if name.strip()]
        elif isinstance(value, list):
            names = [str(name).strip() for name in value if str(name).strip()]
        else:
            names = []
        ApiKey.objects.filter(pk=key.pk).update(allowed_models=names)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
    ]

    operations = [migrations.RunPython(allowed_models_as_lists, migrations.RunPython.noop)]
