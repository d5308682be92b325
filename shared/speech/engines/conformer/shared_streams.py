"""One batch of streams fed by several callers at once: the chunks of concurrent jobs.

A GPU is only busy when a graph call carries many rows, and one short job has few chunks. A
worker that runs several jobs at once (``STT_WORKER_CONCURRENCY``) therefore lets their chunks
share graph calls: every job submits its chunks here, one thread drives a single
``StreamBatch``, and a row freed by any job's chunk is taken by the next waiting chunk of any
job. Each caller gets its own chunks' results back through futures.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future

from shared.speech.engines.base import Float32Array
from shared.speech.engines.conformer.streams import StreamBatch

log = logging.getLogger(__name__)


class SharedStreams:
    """A thread-safe front of one ``StreamBatch`` of at most ``slots`` streams."""

    def __init__(self, make_batch: Callable[[], StreamBatch[int]], slots: int) -> None:
        self._make_batch = make_batch
        self._slots = max(1, slots)
        self._pending: queue.SimpleQueue[tuple[Future[Float32Array], Float32Array, Hashable]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.calls = 0  # graph calls made
        self.shared_calls = 0  # graph calls whose rows belonged to more than one caller

    def submit(self, features: Float32Array, owner: Hashable) -> Future[Float32Array]:
        """Queue one stream of ``owner`` (a job, a call); its log-probabilities come back."""
        if len(features) == 0:
            raise ValueError("a stream needs at least one feature frame")
        future: Future[Float32Array] = Future()
        self._pending.put((future, features, owner))
        self._ensure_driver()
        return future

    def _ensure_driver(self) -> None:
        # Started on first use, so a forking worker starts it in the child that serves jobs.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._drive, name="stt-streams", daemon=True)
                self._thread.start()

    def _drive(self) -> None:
        batch = self._make_batch()
        waiting: dict[int, tuple[Future[Float32Array], Hashable]] = {}
        while True:
            self._take(batch, waiting, block=not batch)
            owners = {owner for _future, owner in waiting.values()}
            try:
                ended = batch.step()
            except Exception as exc:  # noqa: BLE001 - every waiting caller must hear of it
                log.exception("graph call failed; failing the %d streams in it", len(waiting))
                for future, _owner in waiting.values():
                    future.set_exception(exc)
                waiting.clear()
                batch = self._make_batch()
                continue
            self.calls += 1
            self.shared_calls += len(owners) > 1
            for key, log_probs in ended:
                waiting.pop(key)[0].set_result(log_probs)

    def _take(
        self,
        batch: StreamBatch[int],
        waiting: dict[int, tuple[Future[Float32Array], Hashable]],
        block: bool,
    ) -> None:
        """Fill free rows from the queue; with an empty batch, wait for the first stream."""
        while len(batch) < self._slots:
            try:
                future, features, owner = self._pending.get(block=block)
            except queue.Empty:
                return
            block = False
            if not future.set_running_or_notify_cancel():
                continue
            key = id(future)
            waiting[key] = (future, owner)
            batch.add(key, features)
