import ctypes
import os
import signal
import sys

from billiard.process import current_process
from celery import Celery
from celery.signals import beat_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aurax.settings")

app = Celery("aurax")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_the_worker() -> None:
    """This child of a worker (a pool process, or the beat that `worker --beat` starts) ends
    when the worker's main process does, however that ends (killed by the OOM killer, say,
    which leaves it no time to stop its children): Linux sends it SIGTERM then. Otherwise it
    would go on, orphaned, beside the worker started after (a second beat included)."""
    if not sys.platform.startswith("linux"):
        return
    worker = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != worker:  # the worker ended before the call: the signal never comes
        os._exit(1)


@worker_process_init.connect
def _pool_process_init(**kwargs) -> None:
    _end_with_the_worker()


@beat_init.connect
def _beat_init(**kwargs) -> None:
    if current_process().name != "MainProcess":  # embedded in a worker, not `celery beat`
        _end_with_the_worker()
