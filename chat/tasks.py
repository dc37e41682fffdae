import datetime as dt

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="chat.attachments_unsent_delete")
def attachments_unsent_delete() -> int:
    return services.attachments_unsent_delete(
        older_than=dt.timedelta(hours=settings.CHAT_ATTACHMENT_UNSENT_HOURS)
    )
