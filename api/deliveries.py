"""/v1/jobs/{id}/deliveries: a job's webhook attempts, and "send it again now"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import current_owner
from api.serialize import iso
from api.services import services
from shared.delivery import attempts, dispatch
from shared.delivery.url_policy import UrlPolicy, check_url
from shared.errors import ErrorCode, SttError
from shared.jobs import records as job_store
from shared.store.tables import Job, WebhookDelivery

bp = Blueprint("deliveries", __name__, url_prefix="/v1/jobs")


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "attempt": row.attempt,
        "state": row.state,
        "created_at": iso(row.created_at),
        "attempted_at": iso(row.attempted_at),
        "status_code": row.status_code,
        "latency_ms": row.latency_ms,
        "error": row.error,
        "next_attempt_at": iso(row.next_attempt_at),
    }


@bp.get("/<job_id>/deliveries")
def list_deliveries(job_id: str) -> Response:
    with services().sessions() as session:
        job = job_store.get_job(session, job_id, current_owner())  # a key sees its own
        rows = attempts.deliveries_of(session, job.id)
        return jsonify({"job_id": str(job.id), "deliveries": [delivery_json(r) for r in rows]})


@bp.post("/<job_id>/deliveries")
def redeliver(job_id: str) -> tuple[Response, int]:
    """202: the event is due now and enqueued (or left to the sweeper if the broker is down)."""
    svc = services()
    if not svc.settings.webhook_secrets:
        raise SttError(ErrorCode.WEBHOOKS_DISABLED, "webhooks are off: no STT_WEBHOOK_SECRETS")
    with svc.sessions() as session:
        job = job_store.get_job(session, job_id, current_owner())  # a key sees its own
        _check_still_allowed(job)
        delivery_id = _redeliver(session, job)
        dispatch.enqueue_delivery(svc.celery, svc.settings, delivery_id, job.queue)
        row = session.get_one(WebhookDelivery, delivery_id)
        return jsonify({"delivery": delivery_json(row)}), 202


def _check_still_allowed(job: Job) -> None:
    """Answer a refused URL now rather than record a delivery that will give up."""
    if not job.callback_url:
        return  # redeliver() names the problem
    policy = UrlPolicy.from_entries(services().settings.webhook_allowed_hosts)
    try:
        check_url(job.callback_url, policy)
    except OSError:
        pass  # not resolvable right now: the attempt will retry


def _redeliver(session: Session, job: Job) -> int:
    """Two concurrent requests may race for the same new attempt number: the loser re-reads."""
    for _ in range(2):
        try:
            delivery_id = attempts.redeliver(session, job)
            session.commit()
            return delivery_id
        except IntegrityError:
            session.rollback()
    raise SttError(ErrorCode.JOB_IN_PROGRESS, "a redelivery is being recorded; try again")


def notify_terminal(session: Session, job: Job) -> None:
    """Send the first attempt of the job's terminal event (the API's cancel path) now.

    The event itself was recorded with the status change (``cancel_or_delete``); if this send
    fails or the process dies first, the workers' sweeper finds the due row.
    """
    delivery_id = attempts.first_attempt(session, job.id, job.status)
    if delivery_id is not None:
        svc = services()
        dispatch.enqueue_delivery(svc.celery, svc.settings, delivery_id, job.queue)


def set_payload_mode(session: Session, job: Job, mode: str) -> None:
    """Store ``callback_payload`` on a just-created job, before its message is sent."""
    if job.callback_payload != mode:
        job.callback_payload = mode
        session.commit()


def forget_deliveries(session: Session, job: Job) -> None:
    attempts.forget_job(session, job.id)
    session.commit()
