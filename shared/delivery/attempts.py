"""Delivery attempts: the state machine of the ``webhook_deliveries`` rows.

A job's terminal event is recorded with its status change (``shared.jobs.events``). Each attempt
to deliver it is a row in ``webhook_deliveries``; the database, not a Celery
countdown, says what is due (long countdowns outlive the Redis visibility timeout and come back
twice, and a restarted worker would forget them). State per row::

    pending --2xx--------------------------------------> succeeded
       |----410, refused URL, schedule exhausted------> gave_up
       '----anything else--> failed, plus a new pending row (attempt + 1) due after the delay

Every transition is a conditional UPDATE, so two workers never send one attempt twice and an
outcome is recorded once. All attempts of an event share its ``webhook-id`` (``event_id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from shared.delivery.dispatch import send_lease_s
from shared.delivery.payload import build_payload, payload_body
from shared.delivery.schedule import AttemptResult, Outcome
from shared.errors import ErrorCode, SttError
from shared.jobs.events import event_id
from shared.settings import Settings
from shared.store.sessions import rowcount
from shared.store.tables import TERMINAL, DeliveryState, Job, WebhookDelivery, utcnow

SWEEP_BATCH = 100
ERROR_CHARS = 500


def first_attempt(session: Session, job_id: uuid.UUID, status: str) -> int | None:
    """The id of the ``status`` event's first attempt while it is still pending, else None."""
    return session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.event_id == event_id(job_id, status),
            WebhookDelivery.attempt == 1,
            WebhookDelivery.state == DeliveryState.PENDING,
        )
    )


def redeliver(session: Session, job: Job, now: datetime | None = None) -> int:
    """Make the job's event due now: the pending attempt if there is one, else a new attempt.

    The new attempt keeps the event's ``webhook-id``: a receiver that already has the event
    can recognise the repeat. Concurrent calls may collide on (event_id, attempt): IntegrityError.
    """
    if job.status not in TERMINAL:
        raise SttError(ErrorCode.JOB_NOT_FINISHED, f"the job is {job.status}: no event yet")
    if not job.callback_url:
        raise SttError(ErrorCode.NO_CALLBACK_URL, "the job has no callback_url")
    now = now or utcnow()
    eid = event_id(job.id, job.status)
    latest = session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.event_id == eid)
        .order_by(WebhookDelivery.attempt.desc())
        .limit(1)
    )
    if latest is not None and latest.state == DeliveryState.PENDING:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == latest.id, WebhookDelivery.state == DeliveryState.PENDING)
            .values(next_attempt_at=now, enqueued_at=None)
        )
        return latest.id
    row = WebhookDelivery(
        event_id=eid, job_id=job.id, event_type=job.status,
        attempt=latest.attempt + 1 if latest else 1,
        state=DeliveryState.PENDING, next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def deliveries_of(session: Session, job_id: uuid.UUID) -> list[WebhookDelivery]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id)
        .order_by(WebhookDelivery.event_id, WebhookDelivery.attempt)
    )
    return list(session.scalars(query))


def forget_job(session: Session, job_id: uuid.UUID) -> None:
    """A deleted job takes its delivery history (and any pending attempt) with it."""
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.job_id == job_id))


# --- claiming and recording attempts ------------------------------------------------------------


def _due(now: datetime, lease_s: float) -> ColumnElement[bool]:
    """Pending, due, not enqueued recently and not being sent (an expired claim is retaken)."""
    stale = now - timedelta(seconds=lease_s)
    return and_(
        WebhookDelivery.state == DeliveryState.PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.enqueued_at.is_(None), WebhookDelivery.enqueued_at <= stale),
        or_(WebhookDelivery.sending_until.is_(None), WebhookDelivery.sending_until <= now),
    )


def claim_due(session: Session, now: datetime, lease_s: float) -> list[int]:
    """The sweeper's half: mark due rows enqueued (each by one sweeper only) and return them."""
    candidates = session.scalars(
        select(WebhookDelivery.id)
        .where(_due(now, lease_s))
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(SWEEP_BATCH)
    ).all()
    claimed = []
    for delivery_id in candidates:
        hit = rowcount(
            session,
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due(now, lease_s))
            .values(enqueued_at=now)
        )
        if hit:
            claimed.append(delivery_id)
    return claimed


@dataclass(frozen=True, slots=True)
class Claim:
    """One attempt, held by one sender until ``sending_until``; body None: the job is gone."""

    delivery_id: int
    token: str
    event_id: str
    event_type: str
    job_id: uuid.UUID
    attempt: int
    url: str | None
    body: bytes | None


def claim_for_sending(
    session: Session, delivery_id: int, now: datetime, settings: Settings
) -> Claim | None:
    """Take the attempt for this sender, or None: already sent, being sent, or unknown."""
    token = uuid.uuid4().hex
    taken = rowcount(
        session,
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == DeliveryState.PENDING,
            or_(WebhookDelivery.sending_until.is_(None), WebhookDelivery.sending_until <= now),
        )
        .values(claim_token=token, sending_until=now + timedelta(seconds=send_lease_s(settings)))
    )
    if not taken:
        return None
    row = session.get_one(WebhookDelivery, delivery_id)
    job = session.get(Job, row.job_id)
    body = payload_body(build_payload(job, row.event_type, settings)) if job else None
    return Claim(
        delivery_id, token, row.event_id, row.event_type, row.job_id, row.attempt,
        job.callback_url if job else None, body,
    )


def record_outcome(
    session: Session, claim: Claim, result: AttemptResult, outcome: Outcome
) -> bool:
    """Write the attempt's result once (only while the claim is ours) and queue the next one."""
    error = result.error[:ERROR_CHARS] if result.error else None
    done = rowcount(
        session,
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.claim_token == claim.token,
        )
        .values(
            state=outcome.state, attempted_at=result.started_at, status_code=result.status_code,
            latency_ms=result.latency_ms, error=error, next_attempt_at=outcome.next_attempt_at,
            sending_until=None,
        )
    )
    if done and outcome.state == DeliveryState.FAILED:
        session.add(
            WebhookDelivery(
                event_id=claim.event_id, job_id=claim.job_id, event_type=claim.event_type,
                attempt=claim.attempt + 1, state=DeliveryState.PENDING,
                next_attempt_at=outcome.next_attempt_at,
            )
        )
    return bool(done)
