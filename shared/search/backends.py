"""Which database's full-text SQL to use: FTS5 on SQLite, tsvector with GIN on PostgreSQL.

Both backends index the same words (``folding``), answer the same two kinds of match and rank
with lower scores first, so everything above them (filters, cursors, highlights) is shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection, TextualSelect

from shared.search.query import Query

if TYPE_CHECKING:
    from shared.search.index import SegmentRow


class Phase(StrEnum):
    """Hits come in up to two runs: with the diacritics a user typed, then without them."""

    ALL = "all"  # the query has no diacritics: every folded match, one run
    EXACT = "exact"  # folded match whose text also has every word the user typed with marks
    REST = "rest"  # folded matches that are not exact


class Backend(Protocol):
    def write(self, conn: Connection, job_id: uuid.UUID, rows: Sequence[SegmentRow]) -> None:
        """Insert the segment rows and their index entries."""
        ...

    def matches(self, query: Query, phase: Phase) -> TextualSelect:
        """A SELECT of ``seg_id`` and ``score`` (lower ranks first) for the segments found."""
        ...


def backend_for(conn: Connection) -> Backend:
    from shared.search import postgres, sqlite

    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.BACKEND
    if name == "postgresql":
        return postgres.BACKEND
    raise NotImplementedError(f"search has no backend for {name}")
