"""The reconciler: the database says what should be happening; make the broker agree.

Late acks cover a pool child that dies mid-job (Celery requeues its message). They do not
cover the rest, which this pass finds, oldest first, and answers by sending the job's task
again (same task id; a duplicate is harmless, see ``worker.runlock``):

* **unsent** - queued, committed, but never sent (``enqueued_at`` is NULL): the process died
  between the commit and the send, or the broker refused and the row could not be removed;
* **lost** - queued and sent, but the broker holds fewer messages for the queue than the
  database has queued jobs (Redis restarted without persistence, a queue was purged), and the
  job has waited longer than ``STT_RECONCILE_QUEUED_AFTER_S``. Comparing counts keeps a long
  healthy backlog from being sent twice;
* **orphaned** - processing, but no live process holds the job's run lock (the whole worker
  was killed: on Redis its message would wait out the visibility timeout, hours; on the
  filesystem broker it is gone). The next claim counts the attempt, so STT_MAX_ATTEMPTS
  still ends a job that keeps killing its worker;
* **stuck** - processing past its hard time limit while a live process still holds the lock:
  only reported, since a second run could not start beside it.

Several reconcilers (one per worker, plus ``stt reconcile``) may run at once: each resend first
moves ``enqueued_at`` with a conditional UPDATE, so only one of them sends a given job per pass.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from shared.jobs.queue import time_limits
from shared.settings import Settings
from shared.store.tables import Job, JobStatus, utcnow
from worker import runlock
from worker.lost_messages import missing_messages, queues_with_sent_jobs, stale_queued
from worker.resend import ReconcilePass, resend

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReconcileReport:
    """Job ids per finding; ``errors`` for rules that could not run (broker or database down)."""

    unsent: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def resent(self) -> int:
        return len(self.unsent) + len(self.lost) + len(self.orphaned)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reconcile_once(
    settings: Settings,
    sessions: sessionmaker[Session],
    celery: Celery,
    now: datetime | None = None,
) -> ReconcileReport:
    """One pass over every rule; a rule that fails is reported and the others still run."""
    ctx = ReconcilePass(settings, sessions, celery, now or utcnow())
    report = ReconcileReport()
    rules: tuple[Callable[[ReconcilePass, ReconcileReport], None], ...] = (
        _send_unsent, _resend_lost, _recover_orphans,
    )
    for rule in rules:
        try:
            rule(ctx, report)
        except Exception as exc:  # noqa: BLE001 - the next pass tries again
            log.warning("reconcile %s failed: %s: %s", rule.__name__, type(exc).__name__, exc)
            report.errors.append(f"{rule.__name__.lstrip('_')}: {type(exc).__name__}: {exc}")
    return report


# --- the rules ----------------------------------------------------------------------------------


def _send_unsent(ctx: ReconcilePass, report: ReconcileReport) -> None:
    query = (
        select(Job.id, Job.queue)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.enqueued_at.is_(None),
            Job.created_at < ctx.ago(ctx.settings.reconcile_unsent_after_s),
        )
        .order_by(Job.created_at)
        .limit(ctx.settings.reconcile_batch)
    )
    with ctx.sessions() as session:
        rows = session.execute(query).all()
    for job_id, queue in rows:
        if resend(ctx, job_id, queue, JobStatus.QUEUED, None):
            report.unsent.append(str(job_id))


def _resend_lost(ctx: ReconcilePass, report: ReconcileReport) -> None:
    queues = queues_with_sent_jobs(ctx)
    if not queues:
        return
    with ctx.celery.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1)
        for queue in queues:
            missing = missing_messages(ctx, conn, queue)
            if missing <= 0:
                continue
            for job_id, sent_at in stale_queued(ctx, queue, missing):
                if resend(ctx, job_id, queue, JobStatus.QUEUED, sent_at):
                    report.lost.append(str(job_id))


def _recover_orphans(ctx: ReconcilePass, report: ReconcileReport) -> None:
    horizon = ctx.ago(ctx.settings.reconcile_orphan_after_s)
    query = (
        select(Job.id, Job.queue, Job.started_at, Job.enqueued_at)
        .where(
            Job.status == JobStatus.PROCESSING,
            Job.started_at < horizon,
            or_(Job.enqueued_at.is_(None), Job.enqueued_at < horizon),
        )
        .order_by(Job.started_at)
        .limit(ctx.settings.reconcile_batch)
    )
    with ctx.sessions() as session:
        rows = session.execute(query).all()
    for job_id, queue, started_at, sent_at in rows:
        lock = runlock.for_job(ctx.settings, ctx.sessions, job_id)
        if not lock.try_acquire():
            if _past_hard_limit(ctx, queue, started_at):
                log.warning("job %s: processing past its hard time limit, still held", job_id)
                report.stuck.append(str(job_id))
            continue
        try:  # held while sending: a redelivery arriving now is dropped, ours is the one left
            if resend(ctx, job_id, queue, JobStatus.PROCESSING, sent_at):
                report.orphaned.append(str(job_id))
        finally:
            lock.release()


# --- helpers ------------------------------------------------------------------------------------


def _past_hard_limit(ctx: ReconcilePass, queue: str, started_at: datetime | None) -> bool:
    """``started_at`` is never None for a processing job; the column itself is nullable."""
    _soft, hard = time_limits(ctx.settings, queue)
    return started_at is not None and started_at < ctx.ago(
        hard + ctx.settings.reconcile_orphan_after_s
    )


# --- the periodic runner ------------------------------------------------------------------------

_started_pid: int | None = None


def start(settings: Settings, sessions: sessionmaker[Session], celery: Celery) -> None:
    """Once per process: a daemon thread that reconciles now, then every interval."""
    global _started_pid
    if settings.reconcile_interval_s <= 0 or _started_pid == os.getpid():
        return
    _started_pid = os.getpid()
    threading.Thread(
        target=run_forever, args=(settings, sessions, celery),
        name="stt-reconciler", daemon=True,
    ).start()


def run_forever(
    settings: Settings,
    sessions: sessionmaker[Session],
    celery: Celery,
    stop: threading.Event | None = None,
) -> None:
    """Reconcile until ``stop`` is set; the pause is jittered so workers spread their passes."""
    stop = stop or threading.Event()
    while not stop.is_set():
        report = reconcile_once(settings, sessions, celery)
        if report.resent or report.stuck:
            log.info("reconcile: %s", report.to_json())
        stop.wait(settings.reconcile_interval_s * random.uniform(0.8, 1.2))
