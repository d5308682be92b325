"""Telling a lost message from a long backlog: the database's queued jobs against the broker.

A job is "lost" when the broker holds fewer messages for its queue than the database has sent
jobs waiting there (Redis restarted without persistence, a purged queue). Comparing counts, and
measuring twice, keeps a long healthy backlog from being sent a second time.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from kombu.exceptions import ChannelError
from sqlalchemy import func, select

from shared.store.tables import Job, JobStatus
from worker.resend import ReconcilePass

SETTLE_S = 1.0  # a count mismatch must outlast a message in flight between broker and claim


def queues_with_sent_jobs(ctx: ReconcilePass) -> list[str]:
    query = select(Job.queue).where(
        Job.status == JobStatus.QUEUED,
        Job.enqueued_at.is_not(None),
        Job.enqueued_at < ctx.ago(ctx.settings.reconcile_queued_after_s),
    )
    with ctx.sessions() as session:
        return sorted(set(session.scalars(query.distinct())))


def missing_messages(ctx: ReconcilePass, conn: Any, queue: str) -> int:  # noqa: ANN401 - kombu
    """Queued jobs minus waiting messages, measured twice: the smaller deficit counts."""
    first = _queued_count(ctx, queue) - _broker_depth(conn, queue)
    if first <= 0:
        return 0
    time.sleep(SETTLE_S)
    return min(first, _queued_count(ctx, queue) - _broker_depth(conn, queue))


def _queued_count(ctx: ReconcilePass, queue: str) -> int:
    query = select(func.count()).where(
        Job.queue == queue, Job.status == JobStatus.QUEUED, Job.enqueued_at.is_not(None)
    )
    with ctx.sessions() as session:
        return int(session.scalar(query) or 0)


def _broker_depth(conn: Any, queue: str) -> int:  # noqa: ANN401 - kombu Connection
    """Messages waiting in the broker for ``queue`` (not counting ones a worker holds)."""
    channel = conn.default_channel
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:  # Redis forgets an empty queue: nothing waits in it
        return 0


def stale_queued(
    ctx: ReconcilePass, queue: str, limit: int
) -> list[tuple[uuid.UUID, datetime | None]]:
    query = (
        select(Job.id, Job.enqueued_at)
        .where(
            Job.queue == queue,
            Job.status == JobStatus.QUEUED,
            Job.enqueued_at < ctx.ago(ctx.settings.reconcile_queued_after_s),
        )
        .order_by(Job.enqueued_at)
        .limit(min(limit, ctx.settings.reconcile_batch))
    )
    with ctx.sessions() as session:
        return [(row[0], row[1]) for row in session.execute(query).all()]
