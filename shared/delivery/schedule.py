"""The retry schedule: what one attempt's result means for the next.

Pure decisions, no database and no network: only 2xx succeeds, 410 stops for good, anything
else is retried after the configured delay (jittered), or after what a 429/503 asked for.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from shared.settings import Settings
from shared.store.tables import DeliveryState


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one HTTP attempt gave: a status code, or an error (permanent: never retry)."""

    started_at: datetime
    status_code: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    retry_after: str | None = None
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    state: DeliveryState
    next_attempt_at: datetime | None = None


def retry_delay(
    attempt: int, schedule: list[float], jitter: float, rand: Callable[[], float] = random.random
) -> float | None:
    """Seconds before attempt ``attempt + 1``, jittered by +-``jitter``; None: no more attempts.

    Jitter spreads the retries of many events that failed together (a receiver outage), so
    they do not all come back in the same second.
    """
    if attempt < 1 or attempt > len(schedule):
        return None
    return max(0.0, schedule[attempt - 1] * (1 + jitter * (2 * rand() - 1)))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: an integer, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def decide(
    attempt: int,
    result: AttemptResult,
    settings: Settings,
    now: datetime,
    rand: Callable[[], float] = random.random,
) -> Outcome:
    """Only 2xx is success; 410 means "never again"; 429/503 may say when to come back."""
    code = result.status_code
    if code is not None and 200 <= code < 300:
        return Outcome(DeliveryState.SUCCEEDED)
    if code == 410 or result.permanent:
        return Outcome(DeliveryState.GAVE_UP)
    delay = retry_delay(
        attempt, settings.webhook_retry_schedule_s, settings.webhook_retry_jitter, rand
    )
    if delay is None:
        return Outcome(DeliveryState.GAVE_UP)
    asked = parse_retry_after(result.retry_after, now) if code in (429, 503) else None
    if asked is not None:
        delay = min(asked, settings.webhook_max_retry_after_s)
    return Outcome(DeliveryState.FAILED, now + timedelta(seconds=delay))
