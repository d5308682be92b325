"""Run a search: matches from the backend, narrowed by the filters, ranked, a page at a time.

A query typed with diacritics runs in two phases, exact matches first and then the rest, so a
hit that has "bão" always comes before one that only has "bao". Within a phase, matches are
ranked a window at a time: the newest ``WINDOW`` matching segments by the engine's relevance
score (BM25 on SQLite, ts_rank on PostgreSQL; then the segment id), then the next ``WINDOW``.
The cursor is a hit's position (phase, window, score, id), a keyset like the jobs list's: the
next page starts after it, whatever was indexed meanwhile.
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

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import ErrorCode, SttError
from shared.search.backends import Phase, backend_for
from shared.search.filters import Filters
from shared.search.highlight import Marked, best_form
from shared.search.query import Query
from shared.store.tables import Job, SearchSegment

WINDOW = 300  # matching segments ranked at once


@dataclass(frozen=True, slots=True)
class Position:
    """Where a hit stands: its phase, its window (ids under ``below``; None: the newest), and
    its (score, id) inside the window."""

    phase: Phase
    below: int | None
    score: float
    segment_id: int

    def encode(self) -> str:
        raw = json.dumps([self.phase.value, self.below, self.score, self.segment_id])
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
    order = phases(query)
    after = decode_cursor(cursor, order) if cursor else None
    found: list[Position] = []
    for phase in order[order.index(after.phase) if after else 0 :]:
        start = after if after is not None and after.phase is phase else None
        found += _positions(session, query, filters, phase, start, limit + 1 - len(found))
        if len(found) > limit:
            break
    hits = _hits(session, query, found[:limit])
    return hits, (found[limit - 1].encode() if len(found) > limit else None)


def _positions(
    session: Session, query: Query, filters: Filters, phase: Phase,
    after: Position | None, count: int,
) -> list[Position]:
    """Up to ``count`` positions after ``after``, window by window, best first in each.

    Ranking every match of a common word (half the segments hold "của") would cost seconds;
    ranking the newest ``WINDOW`` matches, then the next, keeps a page's cost bounded, while a
    query with fewer matches than that (most queries) is ranked whole. Segments indexed between
    two pages can shift the newest window, as with any ranked list."""
    connection = session.connection()
    backend = backend_for(connection)
    conditions = filters.conditions(connection.dialect.name)
    below = after.below if after is not None else None
    last = (after.score, after.segment_id) if after is not None else None
    found: list[Position] = []
    while len(found) < count:
        window = sorted(backend.window(session, query, phase, conditions, below, WINDOW))
        found += [
            Position(phase, below, score, seg_id)
            for score, seg_id in window
            if last is None or (score, seg_id) > last
        ][: count - len(found)]
        if len(window) < WINDOW:
            break
        below, last = min(seg_id for _, seg_id in window), None
    return found


def _hits(session: Session, query: Query, positions: list[Position]) -> list[Hit]:
    """The page's segments and their jobs, in the order of ``positions``."""
    if not positions:
        return []
    statement = (
        select(
            SearchSegment.id, SearchSegment.job_id, SearchSegment.position,
            SearchSegment.start_s, SearchSegment.end_s, SearchSegment.text,
            SearchSegment.spoken_text, Job.meta, Job.status, Job.created_at,
            Job.original_filename, Job.duration_s, Job.batch_id,
        )
        .join(Job, Job.id == SearchSegment.job_id)
        .where(SearchSegment.id.in_([p.segment_id for p in positions]))
    )
    rows = {row.id: row for row in session.execute(statement)}
    return [_hit(rows[p.segment_id], p, query) for p in positions if p.segment_id in rows]


def _hit(row: Any, position: Position, query: Query) -> Hit:
    form, marked = best_form(row.text, row.spoken_text, query.folded_words)
    return Hit(
        position=position,
        job_id=row.job_id, segment=row.position, start_s=row.start_s, end_s=row.end_s,
        form=form, marked=marked, metadata=row.meta or {}, status=row.status,
        created_at=row.created_at, original_filename=row.original_filename,
        duration_s=row.duration_s, batch_id=row.batch_id,
    )


def decode_cursor(cursor: str, order: tuple[Phase, ...]) -> Position:
    """The position a cursor names; one from another query, or not a cursor, is refused."""
    try:
        phase, below, score, segment_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position = Position(
            Phase(phase), None if below is None else int(below), float(score), int(segment_id)
        )
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, "invalid cursor") from exc
    ids = (position.segment_id, position.below or 0)
    if not (math.isfinite(position.score) and all(0 <= i < 2**63 for i in ids)):
        raise SttError(ErrorCode.INVALID_REQUEST, "invalid cursor")
    if position.phase not in order:
        raise SttError(ErrorCode.INVALID_REQUEST, "this cursor belongs to another query")
    return position
