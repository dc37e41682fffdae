from django.db import migrations, models


def extra_streaming_interrupt(apps, schema_editor):
    """Before the constraint: of the answers of one conversation still marked streaming (left
    by processes that died), all but the newest become interrupted."""
    Message = apps.get_model("chat", "Message")
    newest = {}
    streaming = Message.objects.filter(status="streaming").order_by("conversation_id", "-pk")
    for pk, conversation_id in streaming.values_list("pk", "conversation_id"):
        newest.setdefault(conversation_id, pk)
    Message.objects.filter(status="streaming").exclude(pk__in=newest.values()).update(
        status="interrupted"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_sharing"),
    ]

    operations = [
        migrations.RunPython(extra_streaming_interrupt, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "streaming")),
                fields=("conversation",),
                name="chat_msg_one_streaming",
            ),
        ),
    ]
