"""The Celery application both sides share: the API only sends, workers also consume.

The task is sent by name, so the API never imports the worker (and torch). The job row's id is
the task id: a message always names its row, and the row is committed before sending.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery
from kombu import Queue

from shared.jobs.fs_broker import TRANSPORT
from shared.settings import Settings

TRANSCRIBE_TASK = "stt.transcribe"
QUEUES = ("interactive", "bulk")
#: Enqueueing gives up quickly so the API can answer 503 instead of hanging on a dead broker.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def celery_config(settings: Settings) -> dict[str, Any]:
    longest_job = max(settings.task_time_limit_s, settings.bulk_time_limit_s)
    transport: dict[str, Any] = {
        # Above the longest allowed job, or a late-acked message is redelivered while it runs.
        "visibility_timeout": longest_job + 600,
        # Workers poll queues in the listed order: interactive work always goes first.
        "queue_order_strategy": "priority",
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    }
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # kombu polls the folder; its 1 s default adds a second to every hop.
            "polling_interval": 0.1,
        }
    return {
        "broker_url": settings.broker_url,
        # The embedded broker: kombu's filesystem transport with messages written atomically.
        "broker_transport": TRANSPORT if settings.broker_url.startswith("filesystem") else None,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "interactive",
        "task_queues": [Queue(name) for name in QUEUES],
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        # Loading a model in worker_process_init takes longer than Celery's 4 s default.
        "worker_proc_alive_timeout": 600,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        # Read by worker.shutdown in the main process: how long SIGTERM waits for a job.
        "stt_shutdown_grace_s": settings.worker_shutdown_grace_s,
    }


def make_celery(settings: Settings, name: str = "stt") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


def time_limits(settings: Settings, queue: str) -> tuple[int, int]:
    """(soft, hard) limits: bulk jobs may be hours long and get their own, larger budget."""
    if queue.startswith("bulk"):
        hard = settings.bulk_time_limit_s
        return hard - 60, hard
    return settings.task_soft_time_limit_s, settings.task_time_limit_s


def enqueue_transcription(
    celery: Celery, settings: Settings, job_id: uuid.UUID, queue: str
) -> None:
    soft, hard = time_limits(settings, queue)
    celery.send_task(
        TRANSCRIBE_TASK,
        args=[str(job_id)],
        task_id=str(job_id),
        queue=queue,
        soft_time_limit=soft,
        time_limit=hard,
        retry=True,
        retry_policy=PUBLISH_RETRY,
    )
