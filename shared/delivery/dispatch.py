"""Sending webhook tasks: the task's name and queue, how long a send may hold its claim, and
the enqueueing itself.

Any worker can deliver any event; the task goes to the interactive queue of the job's model,
which the workers of that model surely consume and poll before bulk work.
"""

from __future__ import annotations

import logging

from celery import Celery

from shared.jobs.queue import PUBLISH_RETRY
from shared.settings import Settings

log = logging.getLogger(__name__)

DELIVER_WEBHOOK_TASK = "stt.deliver_webhook"
#: Workers already consume it, and it is polled before bulk: events are not stuck behind backfills.
WEBHOOK_QUEUE = "interactive"
SEND_MARGIN_S = 5.0


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


def enqueue_delivery(celery: Celery, settings: Settings, delivery_id: int, queue: str) -> bool:
    """Send the delivery task now; a failure only delays it (the sweeper finds the due row)."""
    lease = send_lease_s(settings)
    try:
        celery.send_task(
            DELIVER_WEBHOOK_TASK, args=[delivery_id], queue=delivery_queue(queue),
            soft_time_limit=lease,  # type: ignore[arg-type]  # float seconds work; hinted int
            time_limit=lease + 30,  # type: ignore[arg-type]  # float seconds work; hinted int
            retry=True, retry_policy=PUBLISH_RETRY,
        )
    except Exception as exc:  # noqa: BLE001 - the row stays due; the sweeper retries the send
        log.warning("webhook delivery %s not enqueued (%s); the sweeper will", delivery_id, exc)
        return False
    return True
