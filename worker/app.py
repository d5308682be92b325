"""The Celery application the workers run: ``celery -A worker.app worker``.

The model is loaded once per worker process, right after the fork (``worker_process_init``):
CUDA contexts and big tensors must not be created in the parent and inherited by children.
The threads pool (``STT_WORKER_CONCURRENCY`` above 1) forks nothing: its one process loads the
model before it takes tasks (``worker_init``), and its jobs share it.
"""

from __future__ import annotations

from celery.concurrency import get_implementation
from celery.signals import worker_init, worker_process_init

from shared.jobs.queue import make_celery
from shared.jobs.routing import worker_settings
from shared.logs import configure_logging
from shared.settings import load_settings
from worker import deliveries, runtime

settings = worker_settings(load_settings())
configure_logging(settings)
celery = make_celery(settings, name="stt-worker")
celery.conf.include = ["worker.tasks", "worker.deliveries"]
app = celery


@worker_init.connect
def _load_model_for_threads(sender: object = None, **_kwargs: object) -> None:
    if getattr(sender, "pool_cls", None) is get_implementation("threads"):
        rt = runtime.init_process(settings)
        deliveries.start_sweeper(rt, celery)


@worker_process_init.connect
def _load_model(**_kwargs: object) -> None:
    rt = runtime.init_process(settings, pool_child=True)
    # Webhook retries are due rows in the database; this thread enqueues them (no beat needed).
    deliveries.start_sweeper(rt, celery)
