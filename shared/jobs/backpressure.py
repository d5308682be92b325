"""Back-pressure: refuse new jobs while a queue already holds more than the workers can reach.

Accepting work without bound only moves the failure later (a job that waits hours is as good
as lost to an interactive caller, and the broker's memory is finite). Past
``STT_MAX_QUEUED_JOBS`` queued jobs on a base queue (``interactive`` or ``bulk``, every model
together) a submission is answered 503 ``queue_full`` with ``Retry-After``, before its upload
is stored. The count comes from the database, which every API process shares. It is a soft
limit: requests racing each other may pass it by a few.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import ErrorCode, RetryLater
from shared.jobs.routing import BASE_QUEUES, base_queue
from shared.settings import Settings
from shared.store.tables import Job, JobStatus


class QueueFull(RetryLater):
    """``queue_full``, with how long the client should wait before trying again."""

    def __init__(self, base: str, queued: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            ErrorCode.QUEUE_FULL,
            f"the {base} queue already holds {queued} jobs (STT_MAX_QUEUED_JOBS={limit}); "
            f"retry in {retry_after_s} s",
            retry_after_s,
        )


def queued_jobs(session: Session, base: str) -> int:
    """Queued jobs on ``base`` and on its per-model queues (``base.<model>``)."""
    query = select(func.count()).where(
        Job.status == JobStatus.QUEUED,
        or_(Job.queue == base, Job.queue.like(f"{base}.%")),
    )
    return int(session.scalar(query) or 0)


def ensure_room(session: Session, settings: Settings, requested_queue: object) -> None:
    """Raise QueueFull if the requested base queue is at its limit (0: no limit)."""
    limit = settings.max_queued_jobs
    base = base_queue(str(requested_queue or "interactive"))
    if limit <= 0 or base not in BASE_QUEUES:
        return  # an unknown queue is refused by the submission check, with its own message
    queued = queued_jobs(session, base)
    if queued >= limit:
        raise QueueFull(base, queued, limit, settings.queue_full_retry_after_s)
