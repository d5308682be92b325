"""Sending a job's task again, once per pass however many reconcilers run.

A resend first moves ``enqueued_at`` with a conditional UPDATE (only if nobody moved it since it
was read), then sends; a failed send puts the old stamp back, so the next pass tries again.
A duplicate message that slips through is harmless (see ``worker.runlock``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session, sessionmaker

from shared.jobs.queue import enqueue_transcription
from shared.settings import Settings
from shared.store.sessions import rowcount, session_scope
from shared.store.tables import Job, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcilePass:
    """One pass: what it reads and sends with, and the moment its "ago" counts from."""

    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery
    now: datetime

    def ago(self, seconds: float) -> datetime:
        return self.now - timedelta(seconds=seconds)


def resend(
    ctx: ReconcilePass, job_id: uuid.UUID, queue: str, status: JobStatus, sent_at: datetime | None
) -> bool:
    """Stamp ``enqueued_at`` (only if nobody moved it since we read it), then send.

    A failed send puts the old stamp back, so the job is tried again at the next pass.
    """
    if not _stamp(ctx, job_id, status, _same_stamp(sent_at), ctx.now):
        return False
    try:
        enqueue_transcription(ctx.celery, ctx.settings, job_id, queue)
    except Exception:
        _stamp(ctx, job_id, status, Job.enqueued_at == ctx.now, sent_at)
        raise
    log.info("job %s: %s message sent again to %s", job_id, status, queue)
    return True


def _same_stamp(sent_at: datetime | None) -> ColumnElement[bool]:
    return Job.enqueued_at.is_(None) if sent_at is None else Job.enqueued_at == sent_at


def _stamp(
    ctx: ReconcilePass,
    job_id: uuid.UUID,
    status: JobStatus,
    guard: ColumnElement[bool],
    value: datetime | None,
) -> bool:
    with session_scope(ctx.sessions) as session:
        changed = rowcount(
            session,
            update(Job)
            .where(Job.id == job_id, Job.status == status, guard)
            .values(enqueued_at=value)
        )
    return bool(changed)
