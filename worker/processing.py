"""A job's life in the worker: claim, transcribe, record the outcome exactly once.

Every state change is a conditional UPDATE on the job's current status, so a redelivered
message (late acks: a worker died mid-job) can run the job again but only one run can ever
write the final result, and a job canceled or finished meanwhile is left alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update

from shared.db import session_scope
from shared.engines.base import DecodeOptions
from shared.errors import ErrorCode, SttError
from shared.jobs import job_dir
from shared.models import Job, JobStatus, utcnow
from shared.pipeline import PipelineResult
from worker.runtime import Runtime

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0


def process_job(rt: Runtime, raw_id: str) -> None:
    job_id = uuid.UUID(raw_id)
    job = _claim(rt, job_id)
    if job is None:
        return
    if job.attempts > rt.settings.max_attempts:
        _finish(rt, job_id, _failure(ErrorCode.TOO_MANY_ATTEMPTS, _attempts_message(job)))
        return
    log.info("job %s: transcribing %s (attempt %d)", job_id, job.input_path, job.attempts)
    try:
        result = _transcribe(rt, job)
    except SttError as exc:
        _finish(rt, job_id, _failure(exc.code, exc.message))
    except SoftTimeLimitExceeded:
        _finish(rt, job_id, _failure(ErrorCode.TIME_LIMIT_EXCEEDED, "the job ran past its limit"))
    except Exception as exc:  # noqa: BLE001 - recorded on the job, with the traceback logged
        log.exception("job %s: transcription failed", job_id)
        _finish(rt, job_id, _failure(ErrorCode.TRANSCRIPTION_FAILED, f"{type(exc).__name__}"))
    else:
        _finish(rt, job_id, _success(result))


def _claim(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    info = rt.transcriber.engine.info
    with session_scope(rt.sessions) as session:
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.PROCESSING]))
            .values(
                status=JobStatus.PROCESSING,
                attempts=Job.attempts + 1,
                started_at=utcnow(),
                progress=0.0,
                engine=info.engine,
                model_id=info.model,
                model_license=info.license,
            )
        ).rowcount
        if not claimed:
            log.info("job %s: already finished, canceled or deleted; skipping", job_id)
            return None
        return session.get(Job, job_id)


def _transcribe(rt: Runtime, job: Job) -> PipelineResult:
    options = DecodeOptions(**_known_options(job.decoding_options or {}))
    processed = job_dir(rt.settings.data_dir, job.id) / "processed.wav"
    return rt.transcriber.run(
        src=Path(job.input_path),
        processed_wav=processed,
        max_duration_s=rt.settings.max_duration_for(job.queue),
        options=options,
        on_progress=_progress_writer(rt, job.id),
    )


def _known_options(options: dict[str, Any]) -> dict[str, Any]:
    allowed = set(DecodeOptions.__dataclass_fields__)
    known = {k: v for k, v in options.items() if k in allowed}
    if "hotwords" in known:
        known["hotwords"] = tuple(known["hotwords"])
    return known


def _progress_writer(rt: Runtime, job_id: uuid.UUID):  # noqa: ANN202
    last = [0.0]

    def write(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S and fraction < 1.0:
            return
        last[0] = now
        with session_scope(rt.sessions) as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.PROCESSING)
                .values(progress=round(min(max(fraction, 0.0), 1.0) * 100, 1))
            )

    return write


def _success(result: PipelineResult) -> dict[str, Any]:
    return {
        "status": JobStatus.COMPLETED,
        "transcript": result.text,
        "result": result.to_json(),
        "processed_path": str(result.processed_path),
        "duration_s": result.duration_s,
        "processing_s": result.processing_s,
        "progress": 100.0,
        "error_code": None,
        "error_message": None,
    }


def _failure(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"status": JobStatus.FAILED, "error_code": code.value, "error_message": message}


def _attempts_message(job: Job) -> str:
    return f"gave up after {job.attempts - 1} attempts that did not finish (worker lost each time)"


def _finish(rt: Runtime, job_id: uuid.UUID, values: dict[str, Any]) -> bool:
    """Write the outcome only if the job is still ours (status processing): exactly once."""
    with session_scope(rt.sessions) as session:
        done = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.PROCESSING)
            .values(finished_at=utcnow(), **values)
        ).rowcount
    log.info("job %s: %s%s", job_id, values["status"], "" if done else " (already recorded)")
    return bool(done)
