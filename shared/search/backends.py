"""Which database's full-text SQL to use: FTS5 on SQLite, tsvector with GIN on PostgreSQL.

Both backends index the same words (``folding``), answer the same three kinds of match and rank
with lower scores first, so everything above them (filters, windows, cursors, highlights) is
shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, Connection, Select, SQLColumnExpression
from sqlalchemy.orm import Session

from shared.search.query import Query
from shared.store.tables import Job, SearchSegment

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

    def window(
        self, session: Session, query: Query, phase: Phase,
        conditions: list[ColumnElement[bool]], below: int | None, size: int,
    ) -> list[tuple[float, int]]:
        """The ``size`` newest segments found (ids under ``below``) whose jobs meet the
        ``conditions``, as (score, id): a lower score ranks first."""
        ...


def newest(
    found: Select[Any], seg_id: SQLColumnExpression[int],
    conditions: list[ColumnElement[bool]], below: int | None, size: int,
) -> Select[Any]:
    """The ``size`` newest of the segments ``found`` (a SELECT of ``seg_id`` from a FROM that
    holds ``search_segments``) whose jobs meet ``conditions``. The jobs table is joined only
    for conditions: every segment has its job (the foreign key cascades)."""
    statement = found
    if conditions:
        statement = statement.join(Job, Job.id == SearchSegment.job_id).where(*conditions)
    if below is not None:
        statement = statement.where(seg_id < below)
    return statement.order_by(seg_id.desc()).limit(size)


def backend_for(conn: Connection) -> Backend:
    from shared.search import postgres, sqlite

    name = conn.dialect.name
    if name == "sqlite":
        return sqlite.BACKEND
    if name == "postgresql":
        return postgres.BACKEND
    raise NotImplementedError(f"search has no backend for {name}")
