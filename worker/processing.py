"""A job's life in the worker: claim, transcribe, record the outcome exactly once.

Every state change is a conditional UPDATE on the job's current status, so a redelivered
message (late acks: a worker died mid-job) can run the job again but only one run can ever
write the final result, and a job canceled or finished meanwhile is left alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update

from shared.errors import ErrorCode, SttError
from shared.jobs.events import record_event
from shared.jobs.queue import time_limits
from shared.jobs.records import job_dir
from shared.logs import job_log_context
from shared.metrics import observe_finished
from shared.search.index import index_job
from shared.speech.engines.base import DecodeOptions
from shared.speech.pipeline import PipelineResult, ProgressFn, default_decoding
from shared.speech.speakers.options import SpeakerOptions
from shared.store.retries import RetryPolicy, is_transient, with_db_retry
from shared.store.sessions import rowcount, session_scope
from shared.store.tables import Job, JobStatus, utcnow
from shared.text.formatter import FormatOptions
from worker import deliveries, runlock
from worker.inputs import checked_input
from worker.memory import memory_bound
from worker.runtime import Runtime

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
T = TypeVar("T")


def process_job(rt: Runtime, raw_id: str) -> None:
    with job_log_context(raw_id):
        _process(rt, uuid.UUID(raw_id))


def _process(rt: Runtime, job_id: uuid.UUID) -> None:
    """Run only while holding the job's run lock: a duplicate message never starts a second
    run beside a live one, and the reconciler can tell a dead run from a live one."""
    lock = runlock.for_job(rt.settings, rt.sessions, job_id)
    if not _db_retry(rt, f"job {job_id}: run lock", lock.try_acquire):
        log.info("job %s: a live process is running it; duplicate message dropped", job_id)
        return
    try:
        _run(rt, job_id)
    finally:
        lock.release()


def _db_retry(rt: Runtime, what: str, action: Callable[[], T]) -> T:
    """Claim and finish outlive a database restart: retried with backoff, not lost."""
    return with_db_retry(action, what, RetryPolicy.from_settings(rt.settings))


def _run(rt: Runtime, job_id: uuid.UUID) -> None:
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
    except MemoryError:
        limit = f"more than STT_WORKER_JOB_MEMORY_MB={rt.settings.worker_job_memory_mb}"
        _finish(rt, job_id, _failure(ErrorCode.MEMORY_LIMIT_EXCEEDED, f"the job needed {limit}"))
    except Exception as exc:  # noqa: BLE001 - recorded on the job, with the traceback logged
        log.exception("job %s: transcription failed", job_id)
        _finish(rt, job_id, _failure(ErrorCode.TRANSCRIPTION_FAILED, f"{type(exc).__name__}"))
    else:
        _finish(rt, job_id, _success(result))


def _claim(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    return _db_retry(rt, f"job {job_id}: claim", lambda: _claim_once(rt, job_id))


def _claim_once(rt: Runtime, job_id: uuid.UUID) -> Job | None:
    info = rt.transcriber.engine.info
    with session_scope(rt.sessions) as session:
        claimed = rowcount(
            session,
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
        )
        if not claimed:
            log.info("job %s: already finished, canceled or deleted; skipping", job_id)
            return None
        return session.get(Job, job_id)


def _transcribe(rt: Runtime, job: Job) -> PipelineResult:
    settings = rt.settings
    defaults = default_decoding(rt.transcriber.engine, settings.decoder, settings.beam_width)
    options = DecodeOptions(**_known_options({**defaults, **(job.decoding_options or {})}))
    processed = job_dir(rt.settings.data_dir, job.id) / "processed.wav"
    src = checked_input(rt, job)
    # Concurrent jobs share one process: a per-job limit on its memory cannot be told apart.
    headroom = rt.settings.worker_job_memory_mb if rt.settings.worker_concurrency == 1 else 0
    with memory_bound(headroom):
        return rt.transcriber.run(
            src=src,
            processed_wav=processed,
            max_duration_s=rt.settings.max_duration_for(job.queue),
            options=options,
            on_progress=_progress_writer(rt, job.id, _soft_deadline(rt, job)),
            formatting=FormatOptions.of(job.decoding_options or {}),
            speakers=SpeakerOptions.of(job.decoding_options or {}),
        )


def _known_options(options: dict[str, Any]) -> dict[str, Any]:
    allowed = set(DecodeOptions.__dataclass_fields__)
    known = {k: v for k, v in options.items() if k in allowed}
    if "hotwords" in known:
        known["hotwords"] = tuple(known["hotwords"])
    return known


def _soft_deadline(rt: Runtime, job: Job) -> float:
    """When the job's soft time limit passes. Celery's threads pool enforces no time limits,
    so the progress callback (called as chunks finish) checks it too."""
    return time.monotonic() + time_limits(rt.settings, job.queue)[0]


def _progress_writer(rt: Runtime, job_id: uuid.UUID, deadline: float) -> ProgressFn:
    last = [0.0]

    def write(fraction: float) -> None:
        now = time.monotonic()
        if now > deadline:
            raise SoftTimeLimitExceeded()
        if now - last[0] < PROGRESS_EVERY_S and fraction < 1.0:
            return
        last[0] = now
        try:
            with session_scope(rt.sessions) as session:
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.PROCESSING)
                    .values(progress=round(min(max(fraction, 0.0), 1.0) * 100, 1))
                )
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Progress is advisory: transcription goes on, the next write or finish catches up.
            log.warning("job %s: progress not recorded (database unavailable)", job_id)

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
    done, delivery_id = _db_retry(
        rt, f"job {job_id}: finish", lambda: _record_outcome(rt, job_id, values)
    )
    if delivery_id is not None:
        deliveries.enqueue_now(rt.settings, delivery_id)
    log.info("job %s: %s%s", job_id, values["status"], "" if done else " (already recorded)")
    return done


def _record_outcome(
    rt: Runtime, job_id: uuid.UUID, values: dict[str, Any]
) -> tuple[bool, int | None]:
    """One transaction: status, result, webhook event and search rows; retried whole, written
    once."""
    delivery_id = finished = None
    with session_scope(rt.sessions) as session:
        done = rowcount(
            session,
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.PROCESSING)
            .values(finished_at=utcnow(), **values)
        )
        if done:
            finished = session.get_one(Job, job_id)
            # Same transaction as the status: a crash cannot keep one and lose the other.
            delivery_id = record_event(session, job_id, values["status"])
            if values["status"] == JobStatus.COMPLETED:  # searchable as it completes
                index_job(session.connection(), job_id, values["result"])
    if finished is not None:
        observe_finished(finished)  # after the commit: a retried transaction counts once
    return bool(done), delivery_id
