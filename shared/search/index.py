"""A completed job's segments, written to the index in the transaction that records its result.

The worker calls ``index_job`` beside the UPDATE that marks the job completed, so a crash keeps
both or neither; migration 0009 calls ``index_all`` for the jobs completed before search
existed. Each row keeps the segment's written text (what a hit shows) and, where the recogniser's
spoken form differs, that too: both are indexed, so "hai mươi" and "20" find the same segment.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from shared.search.backends import backend_for
from shared.search.folding import fold, words
from shared.store.tables import Job, JobStatus


@dataclass(frozen=True, slots=True)
class SegmentRow:
    position: int
    start_s: float
    end_s: float
    text: str
    spoken_text: str | None

    def parts(self) -> list[list[str]]:
        """The words of the written form, then of the spoken form where it says otherwise;
        the backends keep the two apart so a phrase never spans them."""
        written = words(self.text)
        spoken = words(self.spoken_text or "")
        return [written, spoken] if spoken and spoken != written else [written]

    def folded_parts(self) -> list[list[str]]:
        return [[fold(w) for w in part] for part in self.parts()]

    def columns(self, job_id: uuid.UUID) -> dict[str, object]:
        """The ``search_segments`` row (both backends add their index columns beside it)."""
        return {
            "job_id": job_id,
            "position": self.position,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "spoken_text": self.spoken_text,
        }


def segment_rows(result: dict[str, Any] | None) -> list[SegmentRow]:
    """The result's segments with text; a result without segments is one segment, whole."""
    result = result or {}
    segments = result.get("segments") or [
        {"text": result.get("text") or "", "start": 0.0, "end": result.get("duration_s") or 0.0}
    ]
    return [row for i, seg in enumerate(segments) if (row := _row(i, seg)) is not None]


def _row(position: int, seg: dict[str, Any]) -> SegmentRow | None:
    text = unicodedata.normalize("NFC", str(seg.get("text") or "")).strip()
    spoken = unicodedata.normalize("NFC", str(seg.get("spoken_text") or "")).strip()
    if not text and not spoken:
        return None
    return SegmentRow(
        position=position,
        start_s=float(seg.get("start") or 0.0),
        end_s=float(seg.get("end") or 0.0),
        text=text or spoken,
        spoken_text=spoken if spoken and spoken != text else None,
    )


def index_job(conn: Connection, job_id: uuid.UUID, result: dict[str, Any] | None) -> int:
    """Write the job's segments (call it in the transaction that completes the job)."""
    rows = segment_rows(result)
    if rows:
        backend_for(conn).write(conn, job_id, rows)
    return len(rows)


def index_all(conn: Connection, batch: int = 200) -> int:
    """Index every completed job (the migration that creates the index runs it once)."""
    count = 0
    for job_id, result in _completed(conn, batch):
        count += index_job(conn, job_id, result)
    return count


def _completed(conn: Connection, batch: int) -> Iterator[tuple[uuid.UUID, Any]]:
    """Completed jobs in id order, a page at a time (results can be large)."""
    after: uuid.UUID | None = None
    while True:
        query = select(Job.id, Job.result).where(Job.status == JobStatus.COMPLETED)
        if after is not None:
            query = query.where(Job.id > after)
        page = conn.execute(query.order_by(Job.id).limit(batch)).all()
        yield from ((row.id, row.result) for row in page)
        if len(page) < batch:
            return
        after = page[-1].id
