"""Waiting for a job on behalf of a caller that asked for an answer, not a job id.

The routes that look synchronous (the legacy ``/wav2vec2`` and the OpenAI-compatible
``/v1/audio/transcriptions``) still go through the jobs table and the queue, so their work is
counted, limited and survives a worker crash like any job; only the caller's HTTP request waits.
"""

from __future__ import annotations

import time
import uuid

from api.services import services
from shared.errors import ErrorCode, SttError
from shared.jobs import records as job_store
from shared.store.tables import TERMINAL, Job, JobStatus

POLL_S = 0.2


def wait_for_job(job_id: uuid.UUID, timeout_s: float) -> Job:
    """The job once it has ended, or as it stands when ``timeout_s`` has passed (the caller
    tells the two apart by its status); the job itself goes on either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        with services().sessions() as session:
            job = job_store.get_job(session, job_id)
        if job.status in TERMINAL or time.monotonic() >= deadline:
            return job
        time.sleep(POLL_S)


def outcome_error(job: Job, timeout_code: ErrorCode) -> SttError | None:
    """What a waiting caller is told: nothing for a completed job, the job's own failure, or
    ``timeout_code`` naming the job (it goes on and can be polled) when the wait ran out."""
    if job.status == JobStatus.COMPLETED:
        return None
    if job.status in TERMINAL:
        code = ErrorCode(job.error_code or ErrorCode.TRANSCRIPTION_FAILED)
        return SttError(code, job.error_message or f"job {job.status}")
    return SttError(timeout_code, f"job {job.id} is still {job.status}; poll /v1/jobs/{job.id}")
