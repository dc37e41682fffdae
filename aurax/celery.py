import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aurax.settings")

app = Celery("aurax")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
