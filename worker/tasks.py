"""Celery tasks. Thin on purpose: the job lifecycle lives in worker.processing."""

from __future__ import annotations

from celery import shared_task

from shared.jobs.queue import TRANSCRIBE_TASK
from worker import runtime
from worker.processing import process_job


@shared_task(name=TRANSCRIBE_TASK, acks_late=True, reject_on_worker_lost=True)
def transcribe(job_id: str) -> None:
    process_job(runtime.get(), job_id)
