"""How many requests may hold a server thread while they wait for their job.

The routes that answer with a transcript instead of a job id (``POST /v1/audio/transcriptions``,
``/wav2vec2``) keep their HTTP request open until the job ends. Each holds one of the server's
threads meanwhile, so a burst of them would leave none for job polls, health checks and the
page. Past the limit such a request is refused before its job is created (503
``too_many_waiting`` with Retry-After): a retrying client never leaves two jobs behind, and
``POST /v1/jobs`` with polling or a webhook is never refused for this.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import ErrorCode, RetryLater

RETRY_AFTER_S = 10


class WaitSlots:
    """One per app; ``size`` comes from ``Settings.waiting_slots``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold a slot for the block, or raise RetryLater at once when none is free."""
        if not self._free.acquire(blocking=False):
            raise RetryLater(
                ErrorCode.TOO_MANY_WAITING,
                f"{self.size} requests are already waiting for their transcripts "
                f"(STT_MAX_WAITING_REQUESTS); retry in {RETRY_AFTER_S} s, or submit to "
                "POST /v1/jobs and poll",
                RETRY_AFTER_S,
            )
        try:
            yield
        finally:
            self._free.release()
