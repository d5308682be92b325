"""A bound on how much one job may grow a worker's memory (decoder bombs).

Decoders trust what a file says about itself, so a small crafted file can ask for gigabytes.
The bound is set around one job's transcription and lifted after it; past it allocations fail
and only that job fails, not the worker.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def memory_bound(headroom_mb: int) -> Iterator[None]:
    """Let this process's private memory grow by at most ``headroom_mb`` during one job.

    Decoders trust what a file says (frame sizes, sample rates), so a small crafted file can ask
    for gigabytes; past the limit allocations fail (MemoryError, or a decoder error) and only
    that job fails. RLIMIT_DATA, not RLIMIT_AS: address space merely reserved (CUDA, thread
    arenas) does not count. The previous limit comes back after the job.
    """
    current = _private_bytes()
    if headroom_mb <= 0 or current is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = current + headroom_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _private_bytes() -> int | None:
    """VmData (what RLIMIT_DATA counts) from /proc; None where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
