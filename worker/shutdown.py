"""SIGTERM: let the running job finish, but only for so long; then give it back to the queue.

Celery's warm shutdown (SIGTERM) waits for the running task however long it takes, and an
orchestrator does not: after its grace period it sends SIGKILL to everything, and a job killed
that way waits for the reconciler. So the main process bounds the wait itself: if a job is
still running ``STT_WORKER_SHUTDOWN_GRACE_S`` after SIGTERM, it kills that job's pool child.
Celery treats it as a lost worker (``reject_on_worker_lost``): the unacked message goes back
to the broker, after ``worker_lost_wait`` (10 s), and the warm shutdown then completes. The
next worker claims the job again (attempts + 1); finishing stays exactly once.

Not Celery's cold shutdown (SIGQUIT): with the filesystem broker's thread-based pool it can
deadlock at exit on the pool's result-queue lock after terminating a busy child. Keep the
grace plus about 15 s below the orchestrator's (docker compose ``stop_grace_period``,
Kubernetes ``terminationGracePeriodSeconds``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

from celery import current_app
from celery.signals import worker_shutting_down
from celery.worker import state

log = logging.getLogger(__name__)
GRACE_KEY = "stt_shutdown_grace_s"  # set from settings in shared.jobs.queue.celery_config
POLL_S = 0.2


@worker_shutting_down.connect
def _on_shutting_down(how: str = "", **_kwargs: object) -> None:
    grace = float(current_app.conf.get(GRACE_KEY) or 0)
    if how != "Warm" or grace <= 0 or not state.active_requests:
        return
    threading.Thread(
        target=_requeue_after, args=(grace,), name="stt-shutdown-grace", daemon=True
    ).start()


def _requeue_after(grace: float) -> None:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not state.active_requests:
            return  # finished in time; the warm shutdown completes on its own
        time.sleep(POLL_S)
    for request in tuple(state.active_requests):
        log.warning(
            "job %s still running %.0f s after SIGTERM: stopping it, it goes back to the queue",
            request.id, grace,
        )
        if request.worker_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(request.worker_pid, signal.SIGKILL)
