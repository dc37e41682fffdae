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

# The process that forked this one, noted by the parent just before each fork: a child whose
# parent has died already sees another parent (init) when it asks, not the one it had.
_forked_from = 0


def _fork_noted() -> None:
    global _forked_from
    _forked_from = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_fork_noted)


def _end_with_the_worker() -> None:
    """This child of a worker (a pool process, or the beat that `worker --beat` starts) ends
    when the worker's main process does, however that ends (killed by the OOM killer, say,
    which leaves it no time to stop its children): Linux sends it SIGTERM then. Otherwise it
    would go on, orphaned, beside the worker started after (a second beat included). A worker
    that ended before this ran (between its fork and this child's start) sends nothing: the
    child ends here."""
    if not sys.platform.startswith("linux"):
        return
    worker = _forked_from or os.getppid()
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
