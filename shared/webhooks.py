"""Webhook events for finished jobs: the payload, the retry schedule and the delivery state machine.

A job with a callback URL gets one event per terminal status (completed, failed, canceled).
Each attempt to deliver it is a row in ``webhook_deliveries``; the database, not a Celery
countdown, says what is due (long countdowns outlive the Redis visibility timeout and come back
twice, and a restarted worker would forget them). State per row::

    pending --2xx--------------------------------------> succeeded
       |----410, refused URL, schedule exhausted------> gave_up
       '----anything else--> failed, plus a new pending row (attempt + 1) due after the delay

Every transition is a conditional UPDATE, so two workers never send one attempt twice and an
outcome is recorded once. All attempts of an event share its ``webhook-id`` (``event_id``).
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from celery import Celery
from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from shared.errors import ErrorCode, SttError
from shared.queue import PUBLISH_RETRY
from shared.settings import Settings
from shared.ssrf import UrlPolicy, check_url
from shared.store.tables import TERMINAL, DeliveryState, Job, JobStatus, WebhookDelivery, utcnow

log = logging.getLogger(__name__)

DELIVER_WEBHOOK_TASK = "stt.deliver_webhook"
#: Workers already consume it, and it is polled before bulk: events are not stuck behind backfills.
WEBHOOK_QUEUE = "interactive"
PAYLOAD_MODES = ("full", "thin")
SEND_MARGIN_S = 5.0
SWEEP_BATCH = 100
ERROR_CHARS = 500


def event_id(job_id: uuid.UUID, status: str) -> str:
    """The ``webhook-id``: one per job and terminal status, the receiver's idempotency key."""
    return f"msg_{job_id}_{status}"


def delivery_queue(queue: str) -> str:
    """The interactive queue of ``queue``'s model (``bulk.X`` -> ``interactive.X``).

    Any worker can deliver any event, but only the workers of one model consume its queues:
    the job's own model's workers surely exist, and a worker's own queue is one it consumes.
    """
    _, dot, model = queue.partition(".")
    return f"{WEBHOOK_QUEUE}{dot}{model}"


def send_lease_s(settings: Settings) -> float:
    """How long a claim holds: never shorter than one attempt's connect and read timeouts."""
    attempt_s = settings.webhook_connect_timeout_s + settings.webhook_read_timeout_s
    return max(settings.webhook_lease_s, attempt_s + SEND_MARGIN_S)


def accept_callback_url(url: str, settings: Settings) -> None:
    """The submission rule for a callback URL (API and backfill alike); SttError if refused.

    No secret means no webhooks: an unsigned request, or one signed with a generated secret
    nobody knows, could not be told from a forgery by the receiver. Refusing at the door says
    so at once, where sending nothing would fail silently hours later.
    """
    if not settings.webhook_secrets:
        raise SttError(
            ErrorCode.WEBHOOKS_DISABLED,
            "this server sends no webhooks: set STT_WEBHOOK_SECRETS to enable callback_url",
        )
    try:
        check_url(url, UrlPolicy.from_entries(settings.webhook_allowed_hosts))
    except OSError as exc:
        raise SttError(
            ErrorCode.CALLBACK_URL_NOT_ALLOWED, f"callback_url host does not resolve: {exc}"
        ) from exc


# --- the payload --------------------------------------------------------------------------------


def public_base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def build_payload(job: Job, event_type: str, settings: Settings) -> dict[str, Any]:
    """Standard Webhooks' shape: type, timestamp (of the event, stable across retries), data."""
    base = f"{public_base_url(settings)}/v1/jobs/{job.id}"
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    data: dict[str, Any] = {
        "id": str(job.id),
        "status": event_type,
        "error": error,
        "metadata": job.meta,
        "duration_s": job.duration_s,
        "links": {
            "self": base,
            "transcript": f"{base}/transcript" if event_type == JobStatus.COMPLETED else None,
        },
    }
    if job.callback_payload != "thin":
        data["transcript"] = job.transcript if event_type == JobStatus.COMPLETED else None
    stamp = job.finished_at or utcnow()
    return {"type": f"job.{event_type}", "timestamp": stamp.isoformat(), "data": data}


def payload_body(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Vietnamese stays readable); these exact bytes are signed."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# --- the schedule -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one HTTP attempt gave: a status code, or an error (permanent: never retry)."""

    started_at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    retry_after: str | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None = None


def retry_delay(
    attempt: int, schedule: list[float], jitter: float, rand: Callable[[], float] = random.random
) -> float | None:
    """Seconds before attempt ``attempt + 1``, jittered by +-``jitter``; None: no more attempts.

    Jitter spreads the retries of many events that failed together (a receiver outage), so
    they do not all come back in the same second.
    """
    if attempt < 1 or attempt > len(schedule):
        return None
    return max(0.0, schedule[attempt - 1] * (1 + jitter * (2 * rand() - 1)))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: an integer, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def decide(
    attempt: int,
    result: AttemptResult,
    settings: Settings,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> Outcome:
    """Only 2xx is success; 410 means "never again"; 429/503 may say when to come back."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Outcome(DeliveryState.SUCCEEDED)
    if code == 410 or result.permanent:
        return Outcome(DeliveryState.GAVE_UP)
    delay = retry_delay(
        attempt, settings.webhook_retry_schedule_s, settings.webhook_retry_jitter, rand
    )
    if delay is None:
        return Outcome(DeliveryState.GAVE_UP)
    asked = parse_retry_after(result.retry_after, now) if code in (429, 503) else None
    if asked is not None:
        delay = min(asked, settings.webhook_max_retry_after_s)
    return Outcome(DeliveryState.FAILED, now + timedelta(seconds=delay))


# --- recording events ---------------------------------------------------------------------------


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
        hit = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due(now, lease_s))
            .values(enqueued_at=now)
        ).rowcount
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
    taken = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == DeliveryState.PENDING,
            or_(WebhookDelivery.sending_until.is_(None), WebhookDelivery.sending_until <= now),
        )
        .values(claim_token=token, sending_until=now + timedelta(seconds=send_lease_s(settings)))
    ).rowcount
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
    done = session.execute(
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
    ).rowcount
    if done and outcome.state == DeliveryState.FAILED:
        session.add(
            WebhookDelivery(
                event_id=claim.event_id, job_id=claim.job_id, event_type=claim.event_type,
                attempt=claim.attempt + 1, state=DeliveryState.PENDING,
                next_attempt_at=outcome.next_attempt_at,
            )
        )
    return bool(done)


def enqueue_delivery(celery: Celery, settings: Settings, delivery_id: int, queue: str) -> bool:
    """Send the delivery task now; a failure only delays it (the sweeper finds the due row)."""
    lease = send_lease_s(settings)
    try:
        celery.send_task(
            DELIVER_WEBHOOK_TASK, args=[delivery_id], queue=delivery_queue(queue),
            soft_time_limit=lease, time_limit=lease + 30,
            retry=True, retry_policy=PUBLISH_RETRY,
        )
    except Exception as exc:  # noqa: BLE001 - the row stays due; the sweeper retries the send
        log.warning("webhook delivery %s not enqueued (%s); the sweeper will", delivery_id, exc)
        return False
    return True
