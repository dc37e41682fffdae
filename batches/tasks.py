from celery import shared_task

from . import services


@shared_task(name="batches.batch_run")
def batch_run(batch_id: int) -> None:
    services.batch_run(batch_id=batch_id)


@shared_task(name="batches.batches_resume")
def batches_resume() -> int:
    return services.batches_resume()


@shared_task(name="batches.batch_files_expire")
def batch_files_expire() -> int:
    return services.batch_files_expire()
