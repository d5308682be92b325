"""One ONNX Runtime session run as several single-threaded lanes, each on a slice of the rows.

A streaming Conformer step is a few hundred small operators over a batch of 8 short chunks.
ONNX Runtime splits each operator across its intra-op threads and joins them again before the
next one, and with spinning off (see ``session.py``) every join is a sleep and a wake-up: on 2
cores, 2 threads gave only 1.25-1.3x one thread's speed. Calling the same session from two
threads at once, each on half the rows with one intra-op thread, keeps both cores busy with no
join per operator: 60-63 ms against 87-107 ms per step of 8 rows (``all+int8``, AVX512-VNNI
EPYC). ``InferenceSession.run`` is thread-safe and releases the GIL, and one session shares its
weights between the lanes, so memory does not double.

Each lane quantizes its own activations (one scale per tensor per call), so the text may differ
from one lane's in a few low-confidence words: lanes are a compute path like any other, admitted
per CPU family by the accuracy gate (``gate.py``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

Feeds = dict[str, npt.NDArray[Any]]


class LanedSession:
    """``run`` like an ``InferenceSession``, the batch rows split into ``lanes`` even slices
    run side by side; everything else is the wrapped session's."""

    def __init__(self, session: Any, lanes: int) -> None:
        if lanes < 2:
            raise ValueError(f"a laned session needs two lanes at least, not {lanes}")
        self.session, self.lanes = session, lanes
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def run(self, outputs: list[str] | None, feeds: Feeds) -> list[npt.NDArray[Any]]:
        rows = len(next(iter(feeds.values())))
        cuts = [round(rows * lane / self.lanes) for lane in range(self.lanes + 1)]
        spans = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
        if len(spans) < 2:
            return list(self.session.run(outputs, feeds))
        parts = [{name: value[a:b] for name, value in feeds.items()} for a, b in spans]
        pool = self._threads()
        others = [pool.submit(self.session.run, outputs, part) for part in parts[1:]]
        results = [self.session.run(outputs, parts[0]), *(f.result() for f in others)]
        return [np.concatenate(pieces) for pieces in zip(*results, strict=True)]

    def _threads(self) -> ThreadPoolExecutor:
        """The lanes' threads, started in the process that runs the graph: a prefork worker
        loads the engine before forking, and threads do not survive a fork."""
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.lanes - 1, thread_name_prefix="stt-lane")
            self._pid = os.getpid()
        return self._pool
