"""PostgreSQL: two tsvector columns on ``search_segments`` with a GIN index each.

``exact_tsv`` holds the lowercase words with their diacritics, ``folded_tsv`` the same words
folded in Python (``folding``), so no ``unaccent`` extension or text search configuration has
to exist on the server and both databases fold alike. Vectors and queries are written as
tsvector/tsquery literals from words already cut by ``folding.words`` (letters and digits only,
each quoted again), never through PostgreSQL's parser: its idea of a word depends on the
server's locale, and a query's words must be exactly the row's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, select, text
from sqlalchemy.orm import Session

from shared.search.backends import Phase, newest
from shared.search.query import Query
from shared.store.tables import SearchSegment

if TYPE_CHECKING:
    from shared.search.index import SegmentRow

MAX_POSITION = 16383  # PostgreSQL's largest word position; later words share it
INSERT = text(
    "INSERT INTO search_segments"
    " (job_id, position, start_s, end_s, text, spoken_text, exact_tsv, folded_tsv)"
    " VALUES (:job_id, :position, :start_s, :end_s, :text, :spoken_text,"
    " CAST(:exact AS tsvector), CAST(:folded AS tsvector))"
)
MATCH = "search_segments.folded_tsv @@ CAST(:folded AS tsquery)"
EXACT = " AND search_segments.exact_tsv @@ CAST(:marked AS tsquery)"
NOT_EXACT = " AND NOT search_segments.exact_tsv @@ CAST(:marked AS tsquery)"
# ts_rank is a real; as a double the score a cursor carries compares equal to itself again.
SCORES = text(
    "SELECT -CAST(ts_rank(folded_tsv, CAST(:folded AS tsquery)) AS double precision), id"
    " FROM search_segments WHERE id = ANY(:ids)"
)


def _lexeme(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector(parts: list[list[str]]) -> str:
    """Positions count on across the parts with one left out between them, so no phrase
    (``<->``: the next position) spans the written and the spoken form."""
    entries, position = [], 1
    for part in parts:
        for word in part:
            entries.append(f"{_lexeme(word)}:{min(position, MAX_POSITION)}")
            position += 1
        position += 1
    return " ".join(entries)


def _tsquery(phrases: Sequence[Sequence[str]]) -> str:
    return " & ".join("(" + " <-> ".join(_lexeme(w) for w in p) + ")" for p in phrases)


class PostgresBackend:
    def write(self, conn: Connection, job_id: uuid.UUID, rows: Sequence[SegmentRow]) -> None:
        conn.execute(
            INSERT,
            [
                {
                    **row.columns(job_id),
                    "exact": tsvector(row.parts()),
                    "folded": tsvector(row.folded_parts()),
                }
                for row in rows
            ],
        )

    def window(
        self, session: Session, query: Query, phase: Phase,
        conditions: list[ColumnElement[bool]], below: int | None, size: int,
    ) -> list[tuple[float, int]]:
        """The window's ids first (the planner walks the primary key backwards for a common
        word, or the GIN index for a rare one), then ts_rank for those rows only."""
        folded = _tsquery([c.folded for c in query.clauses])
        if phase is Phase.ALL:
            found = text(MATCH).bindparams(folded=folded)
        else:
            extra = EXACT if phase is Phase.EXACT else NOT_EXACT
            marked = _tsquery([(w,) for w in query.marked])
            found = text(MATCH + extra).bindparams(folded=folded, marked=marked)
        segments = select(SearchSegment.id).where(found)
        ids = list(session.scalars(newest(segments, SearchSegment.id, conditions, below, size)))
        if not ids:
            return []
        scored = session.execute(SCORES, {"folded": folded, "ids": ids})
        return [(float(score), seg_id) for score, seg_id in scored]


BACKEND = PostgresBackend()
