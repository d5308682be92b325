"""Run a search: matches from the backend, narrowed by the filters, ranked, a page at a time.

A query typed with diacritics runs in two phases, exact matches first and then the rest, so a
hit that has "bão" always comes before one that only has "bao"; within a phase the engine's
relevance score decides (BM25 on SQLite, ts_rank on PostgreSQL), then the segment id. The cursor
is that position (phase, score, id), like the jobs list's keyset cursor: the next page starts
after it, whatever was indexed meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shared.errors import ErrorCode, SttError
from shared.search.backends import Backend, Phase, backend_for
from shared.search.filters import Filters
from shared.search.highlight import Marked, best_form
from shared.search.query import Query
from shared.store.tables import Job, SearchSegment


@dataclass(frozen=True, slots=True)
class Position:
    phase: Phase
    score: float
    segment_id: int

    def encode(self) -> str:
        raw = json.dumps([self.phase.value, self.score, self.segment_id])
        return base64.urlsafe_b64encode(raw.encode()).decode()


@dataclass(frozen=True, slots=True)
class Hit:
    position: Position
    job_id: uuid.UUID
    segment: int
    start_s: float
    end_s: float
    form: str  # "written" or "spoken": which text matched
    marked: Marked
    metadata: dict[str, Any]
    status: str
    created_at: datetime
    original_filename: str | None
    duration_s: float | None
    batch_id: uuid.UUID | None


def phases(query: Query) -> tuple[Phase, ...]:
    return (Phase.EXACT, Phase.REST) if query.marked else (Phase.ALL,)


def search(
    session: Session, query: Query, filters: Filters, limit: int, cursor: str | None
) -> tuple[list[Hit], str | None]:
    """A page of hits and the cursor of the next page (None on the last)."""
    backend = backend_for(session.connection())
    order = phases(query)
    after = decode_cursor(cursor, order) if cursor else None
    hits: list[Hit] = []
    for phase in order:
        if after is not None and order.index(phase) < order.index(after.phase):
            continue
        start = after if after is not None and after.phase is phase else None
        hits += _run(session, backend, query, filters, phase, start, limit + 1 - len(hits))
        if len(hits) > limit:
            return hits[:limit], hits[limit - 1].position.encode()
    return hits, None


def _run(
    session: Session, backend: Backend, query: Query, filters: Filters,
    phase: Phase, after: Position | None, count: int,
) -> list[Hit]:
    found = backend.matches(query, phase).subquery("found")
    statement = (
        select(
            found.c.score, SearchSegment.id, SearchSegment.job_id, SearchSegment.position,
            SearchSegment.start_s, SearchSegment.end_s, SearchSegment.text,
            SearchSegment.spoken_text, Job.meta, Job.status, Job.created_at,
            Job.original_filename, Job.duration_s, Job.batch_id,
        )
        .join(SearchSegment, SearchSegment.id == found.c.seg_id)
        .join(Job, Job.id == SearchSegment.job_id)
        .where(*filters.conditions())
        .order_by(found.c.score, found.c.seg_id)
        .limit(count)
    )
    if after is not None:
        statement = statement.where(
            or_(
                found.c.score > after.score,
                and_(found.c.score == after.score, found.c.seg_id > after.segment_id),
            )
        )
    return [_hit(row, phase, query) for row in session.execute(statement)]


def _hit(row: Any, phase: Phase, query: Query) -> Hit:
    form, marked = best_form(row.text, row.spoken_text, query.folded_words)
    return Hit(
        position=Position(phase, float(row.score), row.id),
        job_id=row.job_id, segment=row.position, start_s=row.start_s, end_s=row.end_s,
        form=form, marked=marked, metadata=row.meta or {}, status=row.status,
        created_at=row.created_at, original_filename=row.original_filename,
        duration_s=row.duration_s, batch_id=row.batch_id,
    )


def decode_cursor(cursor: str, order: tuple[Phase, ...]) -> Position:
    """The position a cursor names; one from another query, or not a cursor, is refused."""
    try:
        phase, score, segment_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position = Position(Phase(phase), float(score), int(segment_id))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, "invalid cursor") from exc
    if not (math.isfinite(position.score) and 0 <= position.segment_id < 2**63):
        raise SttError(ErrorCode.INVALID_REQUEST, "invalid cursor")
    if position.phase not in order:
        raise SttError(ErrorCode.INVALID_REQUEST, "this cursor belongs to another query")
    return position
