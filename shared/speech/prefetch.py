"""An iterator computed ahead in a background thread.

Speech detection and reading the processed WAV are Python and ONNX Runtime work of their own;
run ahead in a thread while the engine's graph call runs (which releases the GIL), they take
the time of the graph's idle moments instead of adding to a job's wall time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Final, TypeVar

T = TypeVar("T")


class _End(Enum):
    """The producer's last message: there are no more items."""

    END = 0


_END: Final = _End.END


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, at most ``depth`` of them computed ahead; an exception raised while
    computing them is raised here, at the item where it happened. Stopping early (``close``, or
    the consumer's own exception) stops the thread at its next item."""
    ready: queue.Queue[T | BaseException | _End] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(ready, item, stop):
                    return
            _put(ready, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            _put(ready, exc, stop)

    thread = threading.Thread(target=produce, name="stt-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _put(ready: queue.Queue[T], item: T, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
