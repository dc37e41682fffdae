"""Addresses are unique whatever their case. Existing ones are stored in lower case; if two
users' addresses differ only by case, the migration stops and names them, for an operator
to decide which account keeps the address (merge, rename or delete the other) first."""

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Lower


def emails_lower_case(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    clashes = (
        User.objects.annotate(address=Lower("email"))
        .values("address")
        .annotate(users=Count("id"))
        .filter(users__gt=1)
        .values_list("address", flat=True)
    )
    if clashes:
        raise RuntimeError(
            "These email addresses belong to several users, differing only by case: "
            + ", ".join(sorted(clashes))
            + ". Give each user a distinct address (or remove the extra accounts), then "
            "run the migrations again."
        )
    for user in User.objects.exclude(email=Lower("email")).only("email"):
        User.objects.filter(pk=user.pk).update(email=user.email.strip().lower())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [migrations.RunPython(emails_lower_case, migrations.RunPython.noop)]
