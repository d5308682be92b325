"""Following a backfill run: its window of unfinished jobs, the progress bar, the results file.

Everything here reads the jobs table, never the broker: the row is the truth about a job (the
worker writes every state change there), and a database query works the same on both brokers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from shared.store.tables import TERMINAL, Job, JobStatus

if TYPE_CHECKING:
    from shared.backfill.items import Tally

QUERY_CHUNK = 500  # ids per IN (...) query
Finished = tuple[uuid.UUID, str, float | None]  # job id, final status, audio seconds
OnFinished = Callable[[Finished], None]
T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """itertools.batched arrives in Python 3.12; the project supports 3.11."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class InFlight:
    """The run's unfinished jobs, polled in the database until they reach a final status."""

    def __init__(self, sessions: sessionmaker[Session], poll_s: float) -> None:
        self.sessions = sessions
        self.poll_s = poll_s
        self.pending: set[uuid.UUID] = set()
        self._last_poll = 0.0

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, job_id: uuid.UUID) -> None:
        self.pending.add(job_id)

    def wait_until(
        self, at_most: int, on_finished: OnFinished, timeout_s: float | None = None
    ) -> bool:
        """Block until no more than ``at_most`` jobs are unfinished (or ``timeout_s`` passed);
        report each job that finishes. True when it got there."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.poll_if_due(on_finished)
        while len(self.pending) > at_most:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_s)
            self.poll(on_finished)
        return True

    def poll_if_due(self, on_finished: OnFinished) -> None:
        if time.monotonic() - self._last_poll >= self.poll_s:
            self.poll(on_finished)

    def poll(self, on_finished: OnFinished) -> None:
        self._last_poll = time.monotonic()
        for finished in self._finished():
            self.pending.discard(finished[0])
            on_finished(finished)

    def _finished(self) -> Iterator[Finished]:
        seen: set[uuid.UUID] = set()
        with self.sessions() as session:
            for chunk in batched(list(self.pending), QUERY_CHUNK):
                query = select(Job.id, Job.status, Job.duration_s).where(Job.id.in_(chunk))
                for job_id, status, duration in session.execute(query):
                    seen.add(job_id)
                    if status in TERMINAL:
                        yield job_id, status, duration
        for job_id in self.pending - seen:  # deleted meanwhile (DELETE /v1/jobs)
            yield job_id, JobStatus.CANCELED, None


class Progress:
    """A tqdm bar over the files found; a file counts once its outcome is final.

    Final means: rejected, not audio, answered by an earlier finished job, or its job finished
    in this run. So the rate and ETA are those of transcription, not of sending messages.
    """

    def __init__(self, total: int, tally: Tally, enabled: bool | None = None) -> None:
        self.tally = tally
        self.done = self.failed = 0
        self.audio_s = 0.0
        self.started = time.monotonic()
        # enabled=None lets tqdm decide: a bar on a terminal, nothing in logs and pipes
        disable = None if enabled is None else not enabled
        self.bar = tqdm(total=total, desc="backfill", unit="file", disable=disable, leave=True)

    def submitted(self, final: bool) -> None:
        """One more file handled; ``final`` when nothing more will happen to it in this run."""
        self._advance(1 if final else 0)

    def finished(self, finished: Finished) -> None:
        _job_id, status, duration = finished
        if status == JobStatus.COMPLETED:
            self.done += 1
            self.audio_s += duration or 0.0
        else:
            self.failed += 1
        self._advance(1)

    def _advance(self, settled: int) -> None:
        tally = self.tally
        postfix: dict[str, Any] = {
            "found": tally.found, "queued": tally.queued, "skipped": tally.existing,
            "done": self.done, "failed": self.failed, "audio_h": f"{self.audio_s / 3600:.2f}",
        }
        if tally.rejected:
            postfix["rejected"] = tally.rejected
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(settled)

    def close(self) -> None:
        self.bar.close()


@dataclass(slots=True)
class Report:
    batch_id: uuid.UUID
    tally: Tally
    done: int
    failed: int
    in_flight: int
    audio_s: float
    submit_s: float  # walking the list and sending (what the window allowed)
    elapsed_s: float  # that, and following the jobs with --wait
    interrupted: bool = False

    def summary(self) -> str:
        t = self.tally
        rate = t.handled / self.submit_s if self.submit_s > 0 else 0.0
        lines = [
            f"backfill batch {self.batch_id}: {t.found} files found, {t.queued} queued"
            f" ({t.recovered} recovered), {t.existing} skipped (already done or queued),"
            f" {t.rejected} rejected, {t.ignored} not audio",
            f"followed: {self.done} done, {self.failed} failed, {self.in_flight} still in flight;"
            f" {self.audio_s / 3600:.2f} h of audio transcribed; submitted in"
            f" {self.submit_s:.1f} s ({rate:.1f} files/s), {self.elapsed_s:.1f} s in all",
        ]
        if self.interrupted:
            lines.append("interrupted: run the same command again to resume (nothing is lost)")
        elif self.in_flight:
            lines.append("jobs still in flight finish in the workers: follow them with"
                         f" GET /v1/batches/{self.batch_id}, or re-run with --wait")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ResultLine:
    """A file and what answered it: a job, or an error found before any job existed."""

    path: str
    job_id: uuid.UUID | None
    error: dict[str, str] | None = None


def write_results(
    path: Path, lines: Sequence[ResultLine], sessions: sessionmaker[Session]
) -> int:
    """One JSON line per file, in the order the files were found, with the job's current state."""
    rows = _job_rows(sessions, [line.job_id for line in lines if line.job_id is not None])
    with path.open("w", encoding="utf-8") as out:
        for line in lines:
            _write_line(out, line, rows.get(line.job_id) if line.job_id else None)
    return len(lines)


def _job_rows(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows: dict[uuid.UUID, Any] = {}
    columns = (Job.id, Job.status, Job.transcript, Job.error_code, Job.error_message)
    with sessions() as session:
        for chunk in batched(set(ids), QUERY_CHUNK):
            for row in session.execute(select(*columns).where(Job.id.in_(chunk))):
                rows[row.id] = row
    return rows


def _write_line(out: TextIO, line: ResultLine, row: Any) -> None:
    record: dict[str, Any] = {"path": line.path, "job_id": None, "status": "rejected"}
    if line.error is not None:
        record["error"] = line.error
    elif row is None:
        record.update(job_id=str(line.job_id), status="deleted")
    else:
        record.update(job_id=str(row.id), status=row.status)
        if row.status == JobStatus.COMPLETED:
            record["transcript"] = row.transcript
        elif row.error_code:
            record["error"] = {"code": row.error_code, "message": row.error_message}
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
