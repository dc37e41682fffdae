from celery import shared_task

from . import services


@shared_task(name="api.responses_expire")
def responses_expire() -> int:
    return services.stored_responses_expire()


@shared_task(name="api.response_run")
def response_run(public_id: str) -> None:
    from .background import response_run as run

    run(public_id=public_id)


@shared_task(name="api.background_resume")
def background_resume() -> int:
    return services.background_resume()
