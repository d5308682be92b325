"""Batch rows: one per backfill run or ``POST /v1/batches``, and submitting a batch at once.

Job statuses are counted live from ``jobs.batch_id``; a batch row keeps only what the
submitter knows (items refused at the door, items answered by an earlier job).
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Celery
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shared.backfill.items import Item, Outcome, Tally
from shared.backfill.submitter import Submitter
from shared.errors import ErrorCode, SttError
from shared.settings import Settings
from shared.store.tables import Batch, BatchState, utcnow


def open_batch(
    sessions: sessionmaker[Session], source: str, total: int,
    meta: dict[str, Any], callback_url: str | None, owner: str | None = None,
) -> uuid.UUID:
    batch = Batch(
        id=uuid.uuid4(), source=source, state=BatchState.SUBMITTING, total_items=total,
        rejected=[], meta=meta, callback_url=callback_url, api_key_id=owner,
    )
    with sessions() as session:
        session.add(batch)
        session.commit()
    return batch.id


def load_batch(session: Session, raw_id: str | uuid.UUID, owner: str | None = None) -> Batch:
    """The batch, or BATCH_NOT_FOUND; with an ``owner``, another key's batch is "not found"
    too (as for jobs), so ids cannot be probed across keys."""
    try:
        batch_id = raw_id if isinstance(raw_id, uuid.UUID) else uuid.UUID(raw_id)
    except ValueError as exc:
        raise SttError(ErrorCode.BATCH_NOT_FOUND, f"no batch {raw_id!r}") from exc
    batch = session.get(Batch, batch_id)
    if batch is None or (owner is not None and batch.api_key_id != owner):
        raise SttError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch_id}")
    return batch


def save_batch(
    sessions: sessionmaker[Session], batch_id: uuid.UUID, tally: Tally, state: str | None = None
) -> None:
    values: dict[str, Any] = {
        "queued_items": tally.queued, "existing_items": tally.existing,
        "rejected_items": tally.rejected, "rejected": tally.rejected_items,
    }
    if state is not None:
        values["state"] = state
        values["submitted_at"] = utcnow() if state == BatchState.SUBMITTED else None
    with sessions() as session:
        session.execute(update(Batch).where(Batch.id == batch_id).values(**values))
        session.commit()


def submit_batch(
    settings: Settings, sessions: sessionmaker[Session], celery: Celery, items: list[Item],
    *, source: str, meta: dict[str, Any], callback_url: str | None, options: dict[str, Any],
    owner: str | None = None,
) -> tuple[uuid.UUID, list[Outcome]]:
    """Submit every item at once (the API's batches, capped by STT_BATCH_MAX_PATHS)."""
    batch_id = open_batch(sessions, source, len(items), meta, callback_url, owner)
    submitter = Submitter(
        settings, sessions, celery, batch_id, options=options, callback_url=callback_url,
        owner=owner,
    )
    tally, outcomes, state = Tally(found=len(items)), [], BatchState.INTERRUPTED
    try:
        for item in items:
            outcome = submitter.submit(item)
            tally.add(outcome)
            outcomes.append(outcome)
        state = BatchState.SUBMITTED
    finally:
        save_batch(sessions, batch_id, tally, state)
    return batch_id, outcomes
