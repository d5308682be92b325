"""Job records: creation with idempotency, lookup, listing and removal.

The API and the backfill command both create jobs through here, so the rules (one job per
idempotency key, the same key with another body is a conflict) live in one place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import ErrorCode, SttError
from shared.jobs.events import record_event
from shared.store.sessions import rowcount
from shared.store.tables import TERMINAL, Job, JobStatus, utcnow


@dataclass(slots=True)
class Submission:
    """Everything a caller asked for, before it becomes a row."""

    job_id: uuid.UUID
    source: str  # "upload" | "path"
    input_path: Path
    original_filename: str | None
    sha256: str
    input_format: str
    queue: str = "interactive"
    meta: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    api_key_id: str | None = None  # the submitting key's name; None when the API is open

    def fingerprint(self) -> str:
        """What makes two requests "the same body" for idempotency."""
        body = {
            "source": self.source,
            "content": self.sha256,
            "path": str(self.input_path) if self.source == "path" else None,
            "metadata": self.meta,
            "callback_url": self.callback_url,
            "options": self.options,
            "queue": self.queue,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def create_job(session: Session, sub: Submission) -> tuple[Job, bool]:
    """Insert the job, or return the earlier one for a replayed idempotency key.

    Returns (job, created). The unique constraint on the key settles races between two
    concurrent requests with the same key.
    """
    if sub.idempotency_key:
        existing = _by_idempotency_key(session, sub)
        if existing is not None:
            return existing, False
    job = Job(
        id=sub.job_id,
        status=JobStatus.QUEUED,
        queue=sub.queue,
        source=sub.source,
        original_filename=sub.original_filename,
        input_path=str(sub.input_path),
        sha256=sub.sha256,
        input_format=sub.input_format,
        meta=sub.meta,
        callback_url=sub.callback_url,
        decoding_options=sub.options,
        idempotency_key=sub.idempotency_key,
        request_fingerprint=sub.fingerprint(),
        api_key_id=sub.api_key_id,
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _by_idempotency_key(session, sub)
        if existing is None:
            raise
        return existing, False
    return job, True


def _by_idempotency_key(session: Session, sub: Submission) -> Job | None:
    job = session.scalar(select(Job).where(Job.idempotency_key == sub.idempotency_key))
    if job is not None and job.request_fingerprint != sub.fingerprint():
        raise SttError(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "this Idempotency-Key was already used with a different request body",
        )
    return job


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise SttError(ErrorCode.JOB_NOT_FOUND, f"no job {raw!r}") from exc


def get_job(session: Session, raw_id: str | uuid.UUID, owner: str | None = None) -> Job:
    """The job, or JOB_NOT_FOUND; with an ``owner``, another key's job is "not found" too, so a
    key cannot even learn that a job id exists."""
    job_id = raw_id if isinstance(raw_id, uuid.UUID) else parse_job_id(raw_id)
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.api_key_id != owner):
        raise SttError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}")
    return job


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, "invalid cursor") from exc


def list_jobs(
    session: Session, status: str | None, limit: int, cursor: str | None,
    owner: str | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id) so pages stay stable under inserts.
    With an ``owner``, only that key's jobs."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if owner is not None:
        query = query.where(Job.api_key_id == owner)
    if status is not None:  # "?status=" is a typo, not "all": refused like any unknown status
        if status not in {s.value for s in JobStatus}:
            raise SttError(ErrorCode.INVALID_REQUEST, f"unknown status {status!r}")
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
        )
    jobs = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor(jobs[limit - 1]) if len(jobs) > limit else None
    return jobs[:limit], next_cursor


def job_dir(data_dir: Path, job_id: uuid.UUID) -> Path:
    """Each job owns one folder: no two jobs ever share a processed file (the first version did)."""
    return data_dir / "jobs" / str(job_id)


def cancel_or_delete(session: Session, job: Job, data_dir: Path) -> str:
    """Cancel a queued job; delete a finished one and its files. Returns what was done."""
    if job.status == JobStatus.QUEUED:
        # Conditional, so a worker claiming the job at this instant wins cleanly or loses cleanly.
        canceled = rowcount(
            session,
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELED, finished_at=utcnow())
        )
        if canceled:  # the canceled event commits with the status: no crash can drop it
            record_event(session, job.id, JobStatus.CANCELED)
        session.commit()
        if canceled:
            session.refresh(job)
            return "canceled"
        session.refresh(job)
    if job.status in TERMINAL:
        shutil.rmtree(job_dir(data_dir, job.id), ignore_errors=True)
        session.delete(job)
        session.commit()
        return "deleted"
    raise SttError(ErrorCode.JOB_IN_PROGRESS, "the job is being processed; try again when done")
