from celery import shared_task

from . import services


@shared_task(name="api.responses_expire")
def responses_expire() -> int:
    return services.stored_responses_expire()
