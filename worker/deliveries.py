"""Webhook delivery: the ``stt.deliver_webhook`` task, and the sweeper that keeps retries moving.

Retries are not Celery countdowns: the database row says when an attempt is due, and a sweeper
thread in every worker process (started with the process, no beat needed) enqueues due rows.
It runs once at start, so a worker restarted between attempts picks up what the last one left.
Several sweepers are safe: each due row is claimed by one conditional UPDATE.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import requests
from celery import Celery, current_app, shared_task
from sqlalchemy.orm import Session, sessionmaker

from shared.delivery import attempts, dispatch, schedule
from shared.delivery.attempts import Claim
from shared.delivery.schedule import AttemptResult
from shared.delivery.url_policy import UrlPolicy, check_url, safe_session
from shared.errors import SttError
from shared.settings import Settings
from shared.store.sessions import session_scope
from shared.store.tables import utcnow
from shared.webhook_signing import signed_headers
from worker import runtime

log = logging.getLogger(__name__)
USER_AGENT = "vi-stt-webhooks/1"

_app: Celery | None = None
_sweeper_pid: int | None = None


@shared_task(name=dispatch.DELIVER_WEBHOOK_TASK, acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    rt = runtime.get()
    deliver(rt.settings, rt.sessions, int(delivery_id))


def deliver(settings: Settings, sessions: sessionmaker[Session], delivery_id: int) -> str | None:
    """Make one attempt if it is still ours to make; the state recorded, or None if skipped."""
    with session_scope(sessions) as session:
        claim = attempts.claim_for_sending(session, delivery_id, utcnow(), settings)
    if claim is None:
        log.info("webhook delivery %s: already sent or being sent; skipping", delivery_id)
        return None
    result = send(claim, settings)
    outcome = schedule.decide(claim.attempt, result, settings, utcnow())
    with session_scope(sessions) as session:
        recorded = attempts.record_outcome(session, claim, result, outcome)
    log.info(
        "webhook %s attempt %d: %s (%s)%s", claim.event_id, claim.attempt, outcome.state,
        result.status_code or result.error, "" if recorded else " (claim lost; not recorded)",
    )
    return outcome.state


def send(claim: Claim, settings: Settings) -> AttemptResult:
    """One signed POST, checked for SSRF first and at connect time; never raises."""
    started = utcnow()
    if claim.body is None or not claim.url:
        return AttemptResult(started, error="the job was deleted", permanent=True)
    if not settings.webhook_secrets:
        return AttemptResult(started, error="no STT_WEBHOOK_SECRETS on this worker; not sent")
    policy = UrlPolicy.from_entries(settings.webhook_allowed_hosts)
    clock = time.perf_counter()
    try:
        check_url(claim.url, policy)
        response = _post(claim, claim.body, policy, settings)
    except SttError as exc:  # the URL is refused: retrying cannot help
        return AttemptResult(started, error=exc.message, permanent=True)
    except Exception as exc:  # noqa: BLE001 - any other failure is a failed attempt, retried
        return AttemptResult(started, error=_describe(exc), latency_ms=_ms_since(clock))
    return AttemptResult(
        started, status_code=response.status_code, latency_ms=_ms_since(clock),
        retry_after=response.headers.get("Retry-After"),
    )


def _post(
    claim: Claim, body: bytes, policy: UrlPolicy, settings: Settings
) -> requests.Response:
    headers = {
        **signed_headers(claim.event_id, body, settings.webhook_secrets[0]),
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
    }
    timeout = (settings.webhook_connect_timeout_s, settings.webhook_read_timeout_s)
    with safe_session(policy) as session:
        response = session.post(
            claim.url or "", data=body, headers=headers, timeout=timeout,
            allow_redirects=False, stream=True,  # the status is all we need; skip the body
        )
        response.close()
    return response


def _describe(exc: Exception) -> str:
    """A short cause for the attempt's record, without the URL's path or query (may hold tokens)."""
    if isinstance(exc, requests.Timeout):
        return f"timeout: {type(exc).__name__}"
    if isinstance(exc, requests.ConnectionError) and exc.args:
        return f"connection failed: {getattr(exc.args[0], 'reason', None) or type(exc).__name__}"
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        return f"cannot resolve or reach the host: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _ms_since(clock: float) -> float:
    return round((time.perf_counter() - clock) * 1000, 1)


# --- enqueueing and the sweeper -----------------------------------------------------------------


def own_queue(settings: Settings) -> str:
    """Where this worker sends the deliveries it enqueues: a queue it consumes itself."""
    return settings.worker_queues[0] if settings.worker_queues else dispatch.WEBHOOK_QUEUE


def enqueue_now(settings: Settings, delivery_id: int) -> None:
    """Send the task for a delivery just recorded in this worker (the sweeper is the fallback)."""
    dispatch.enqueue_delivery(_app or current_app, settings, delivery_id, own_queue(settings))


def sweep_once(settings: Settings, sessions: sessionmaker[Session], celery: Celery) -> int:
    """Enqueue every due delivery not enqueued by someone else; how many were enqueued."""
    with session_scope(sessions) as session:
        due = attempts.claim_due(session, utcnow(), dispatch.send_lease_s(settings))
    for delivery_id in due:
        dispatch.enqueue_delivery(celery, settings, delivery_id, own_queue(settings))
    return len(due)


def start_sweeper(rt: runtime.Runtime, celery: Celery) -> None:
    """Once per process: a daemon thread that sweeps now, then every sweep interval."""
    global _app, _sweeper_pid
    _app = celery
    if _sweeper_pid == os.getpid():
        return
    _sweeper_pid = os.getpid()
    if not rt.settings.webhook_secrets:
        log.warning("no STT_WEBHOOK_SECRETS: due webhook deliveries will fail until one is set")
    threading.Thread(
        target=_sweep_forever, args=(rt.settings, rt.sessions, celery),
        name="stt-webhook-sweeper", daemon=True,
    ).start()


def _sweep_forever(settings: Settings, sessions: sessionmaker[Session], celery: Celery) -> None:
    pause = threading.Event()
    while True:
        try:
            sweep_once(settings, sessions, celery)
        except Exception as exc:  # noqa: BLE001 - a failed sweep is retried at the next tick
            log.warning("webhook sweep failed: %s", exc)
        pause.wait(settings.webhook_sweep_interval_s)
