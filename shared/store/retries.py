"""Retry a database write with backoff while the database is unreachable.

A worker that has spent minutes transcribing must not lose the result because PostgreSQL
restarted or a SQLite writer held the lock for a moment: the write is retried until the
database answers again, up to a bound (``STT_DB_RETRY_MAX_S``). Only connection-level
failures are retried; a constraint violation or a bug raises at once. Each retried write is
one transaction with a conditional UPDATE, so running it twice cannot write anything twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    max_total_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            first_delay_s=settings.db_retry_first_delay_s,
            max_delay_s=settings.db_retry_max_delay_s,
            max_total_s=settings.db_retry_max_s,
        )


def is_transient(exc: BaseException) -> bool:
    """Connection lost, refused or locked: worth another try. Anything else is not."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def with_db_retry(
    action: Callable[[], T],
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``; on a transient database error wait and run it again, with backoff.

    Gives up (re-raising the last error) once ``policy.max_total_s`` would be exceeded.
    """
    deadline = time.monotonic() + policy.max_total_s
    delay = policy.first_delay_s
    while True:
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning(
                "%s: database unavailable (%s); retrying in %.1f s",
                what, type(exc).__name__, delay,
            )
            sleep(delay)
            delay = min(delay * 2, policy.max_delay_s)
