"""SQLite: an FTS5 table beside ``search_segments`` (rowid = the segment's id).

One FTS5 table with two columns: ``exact`` (lowercase words with their diacritics) and
``folded`` (the same words folded in Python, see ``folding``). Its tokenizer is ``unicode61
remove_diacritics 0``: it must keep the marks of the ``exact`` column, and ``folded`` arrives
folded already (đ included, which remove_diacritics would leave alone). A trigger removes the
FTS5 row when its segment row goes, so a cascaded job delete empties both.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Integer,
    TextualSelect,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from shared.search.backends import Phase, newest
from shared.search.query import Query
from shared.store.tables import SearchSegment

if TYPE_CHECKING:
    from shared.search.index import SegmentRow

# Between the written and the spoken words: a token FTS5 indexes (a private-use character is a
# token character to unicode61) that no query can contain, so no phrase spans the two forms.
GAP = "\ue000"
FTS_INSERT = text("INSERT INTO search_fts (rowid, exact, folded) VALUES (:id, :exact, :folded)")


def _joined(parts: list[list[str]]) -> str:
    return f" {GAP} ".join(" ".join(part) for part in parts)


class SqliteBackend:
    def write(self, conn: Connection, job_id: uuid.UUID, rows: Sequence[SegmentRow]) -> None:
        ids = conn.execute(
            insert(SearchSegment).returning(SearchSegment.id, sort_by_parameter_order=True),
            [row.columns(job_id) for row in rows],
        ).scalars().all()
        conn.execute(
            FTS_INSERT,
            [
                {"id": seg_id, "exact": _joined(row.parts()), "folded": _joined(row.folded_parts())}
                for seg_id, row in zip(ids, rows, strict=True)
            ],
        )

    def window(
        self, session: Session, query: Query, phase: Phase,
        conditions: list[ColumnElement[bool]], below: int | None, size: int,
    ) -> list[tuple[float, int]]:
        """FTS5 walks its matches newest first and stops after ``size``; BM25 (``rank``) is
        computed for those rows only."""
        found = _matches(query, phase).subquery("found")
        segments = select(found.c.seg_id).join(SearchSegment, SearchSegment.id == found.c.seg_id)
        statement = newest(segments, found.c.seg_id, conditions, below, size)
        statement = statement.add_columns(found.c.score)
        return [(float(score), seg_id) for seg_id, score in session.execute(statement)]


def _matches(query: Query, phase: Phase) -> TextualSelect:
    folded = " AND ".join(_phrase("folded", c.folded) for c in query.clauses)
    marked = " AND ".join(_phrase("exact", (w,)) for w in query.marked)
    expression = {
        Phase.ALL: folded,
        Phase.EXACT: f"({folded}) AND ({marked})",
        Phase.REST: f"({folded}) NOT ({marked})",
    }[phase]
    return (
        text(
            "SELECT rowid AS seg_id, rank AS score FROM search_fts"
            " WHERE search_fts MATCH :expression"
        )
        .bindparams(expression=expression)
        .columns(seg_id=Integer, score=Float)
    )


def _phrase(column: str, words: Sequence[str]) -> str:
    """``column : "w1 w2"``: every word a quoted string, so FTS5 reads none of it as syntax."""
    quoted = " ".join(words).replace('"', '""')
    return f'{column} : "{quoted}"'


BACKEND = SqliteBackend()
