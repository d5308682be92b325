"""A job's terminal events, written in the transaction that changes its status.

A job with a callback URL gets one event per terminal status (completed, failed, canceled),
recorded as the first delivery attempt of that event in ``webhook_deliveries``. Writing it here,
beside the status change, means no crash can keep the one and lose the other. Sending, retrying
and signing the event is ``shared.delivery``'s business: it reads what this module wrote, and
nothing here knows how an event is delivered.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.store.tables import TERMINAL, DeliveryState, Job, WebhookDelivery, utcnow


def event_id(job_id: uuid.UUID, status: str) -> str:
    """The ``webhook-id``: one per job and terminal status, the receiver's idempotency key."""
    return f"msg_{job_id}_{status}"


def record_event(
    session: Session, job_id: uuid.UUID, status: str, now: datetime | None = None
) -> int | None:
    """Add the first attempt of the job's ``status`` event, due now; its id, or None.

    Call it in the transaction that changed the status, so the event commits with it. Nothing
    is added for a job without a callback URL, a non-terminal status, or an event that exists.
    """
    job = session.get(Job, job_id)
    if job is None or not job.callback_url or status not in TERMINAL:
        return None
    eid = event_id(job_id, status)
    if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.event_id == eid).limit(1)):
        return None
    row = WebhookDelivery(
        event_id=eid, job_id=job_id, event_type=str(status), attempt=1,
        state=DeliveryState.PENDING, next_attempt_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    return row.id
