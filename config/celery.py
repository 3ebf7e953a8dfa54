"""Celery application. In the embedded default (no broker configured) tasks run in-process.

Beat records a tick in the database when it starts and after each scheduled publish
(``config.health.start_beat_ticks``); readiness reports its age.

When a worker starts it publishes one sweep (``allocation.tasks.sweep_task``): whatever was
stored while no worker or no broker was there (pending events, queued runs) is picked up at
once instead of at the next beat, and runs left ``running`` by a dead worker are reaped.
"""
import logging
import os

from celery import Celery
from celery.signals import beat_embedded_init, beat_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("allot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@worker_ready.connect
def sweep_on_worker_start(sender=None, **kwargs) -> None:
    from allocation.tasks import sweep_task
    from config import broker

    broker.publish(sweep_task, kwargs={"startup": True})


@beat_init.connect
@beat_embedded_init.connect
def record_beat_ticks(sender=None, **kwargs) -> None:
    from config import health

    health.start_beat_ticks()
