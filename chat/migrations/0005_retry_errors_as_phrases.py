"""Answers that failed with a provider's error and the seconds to wait ("The provider is rate
limiting requests. Retry in 30 s.") were stored as English text only, and translated when
shown by matching that English. Such errors are now stored with their phrase
(gateway.errors: the message and the seconds kept apart); this gives the answers stored before
theirs, so that every one is said in its reader's language and number format, as a new one is.
The text stays as it was (reversing only forgets the phrases)."""

import re

from django.db import migrations

RETRY = "%(message)s Retry in %(seconds)s s."
_WAITED = re.compile(r"^(?P<message>.*) Retry in (?P<seconds>\d+) s\.$", re.DOTALL)
BATCH = 500


def _phrase(text: str) -> dict | None:
    waited = _WAITED.match(text)
    if waited is None:
        return None
    return {
        "text": RETRY,
        "values": {
            "message": {"text": waited["message"]},
            "seconds": {"number": int(waited["seconds"])},
        },
    }


def phrases_give(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    messages = Message.objects.using(schema_editor.connection.alias)
    # Failed answers are few; read before any is written (no cursor open across the writes).
    found = list(
        messages.filter(
            status="error",
            error_phrase__isnull=True,
            error_message__contains=" Retry in ",
            error_message__endswith=" s.",
        ).values_list("pk", "error_message")
    )
    changed = [
        Message(pk=pk, error_phrase=said)
        for pk, text in found
        if (said := _phrase(text)) is not None
    ]
    messages.bulk_update(changed, ["error_phrase"], batch_size=BATCH)


def phrases_forget(apps, schema_editor):
    # The code before this migration reads these answers from their text.
    Message = apps.get_model("chat", "Message")
    Message.objects.using(schema_editor.connection.alias).filter(error_phrase__text=RETRY).update(
        error_phrase=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_answer_error_phrase"),
    ]

    operations = [
        migrations.RunPython(phrases_give, phrases_forget, elidable=True),
    ]
