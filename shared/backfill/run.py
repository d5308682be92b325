"""``stt backfill``: one command-line run over an archive, resumable and bounded.

What a run adds to the submitter (``shared.backfill.submitter``): discovery of the files, a
window of unfinished jobs (``--max-in-flight``) it waits on before sending more, progress on a
terminal, a batch row kept up to date for ``GET /v1/batches/{id}``, and a clean stop on Ctrl-C
(running the same command again resumes: what is done or queued is answered by its job).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from shared.backfill.batches import open_batch, save_batch
from shared.backfill.discovery import discover
from shared.backfill.items import Item, ItemState, Outcome, Tally
from shared.backfill.progress import InFlight, Progress, Report, ResultLine, write_results
from shared.backfill.submitter import Submitter
from shared.delivery.callbacks import accept_callback_url
from shared.errors import ErrorCode, SttError
from shared.jobs.queue import make_celery
from shared.settings import Settings
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import TERMINAL, BatchState

SAVE_EVERY = 200  # items between updates of a run's batch row


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C until the current file's commit-and-send is done, then stop the run.

    A hard kill in between is still safe (the row is found and sent next time); this only
    keeps the common Ctrl-C from leaving such rows behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    """``k=v`` pairs from the command line."""
    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SttError(ErrorCode.INVALID_REQUEST, f"--metadata wants key=value, not {pair!r}")
        meta[key.strip()] = value
    return meta


def check_callback_url(url: str | None, settings: Settings) -> str | None:
    """The API's rule for callback URLs (http(s), webhooks enabled, host allowed)."""
    if not url:
        return None
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise SttError(ErrorCode.INVALID_REQUEST, "--callback-url must be an http(s) URL")
    accept_callback_url(url, settings)
    return url


# --- the command-line run --------------------------------------------------------------------


@dataclass(slots=True)
class BackfillRequest:
    paths: list[Path] = field(default_factory=list)
    glob: str | None = None
    manifest: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    callback_url: str | None = None
    decoder: str | None = None
    wait: bool = False
    wait_timeout_s: float | None = None  # stop following after this long (jobs keep running)
    out: Path | None = None
    max_in_flight: int | None = None
    retry_failed: bool = False
    progress: bool | None = None  # None: a bar on a terminal only


def run_backfill(settings: Settings, request: BackfillRequest) -> Report:
    """Discover, then submit file by file inside the in-flight window; follow to the end if
    asked. Ctrl-C ends the run cleanly with a report; running it again resumes."""
    engine = make_engine(settings.database_url)
    sessions, celery = make_session_factory(engine), make_celery(settings)
    try:
        items = discover(
            request.paths, request.glob, request.manifest, request.metadata,
            settings.allowed_audio_roots,
        )
        return _Run(settings, request, sessions, celery, items).execute()
    finally:
        celery.close()
        engine.dispose()


class _Run:
    def __init__(
        self, settings: Settings, request: BackfillRequest, sessions: sessionmaker[Session],
        celery: Celery, items: list[Item],
    ) -> None:
        self.request, self.sessions, self.items = request, sessions, items
        self.limit = request.max_in_flight or settings.backfill_max_in_flight
        self.batch_id = open_batch(
            sessions, "cli", len(items), request.metadata, request.callback_url
        )
        self.submitter = Submitter(
            settings, sessions, celery, self.batch_id,
            options={"decoder": request.decoder} if request.decoder else {},
            callback_url=request.callback_url, retry_failed=request.retry_failed,
        )
        self.tally = Tally(found=len(items))
        self.in_flight = InFlight(sessions, settings.backfill_poll_s)
        self.progress = Progress(len(items), self.tally, request.progress)
        self.lines: list[ResultLine] = []

    def execute(self) -> Report:
        started, state, interrupted = time.monotonic(), BatchState.INTERRUPTED, False
        submit_s = 0.0
        try:
            self._submit_all()
            state, submit_s = BatchState.SUBMITTED, time.monotonic() - started
            if self.request.wait:
                self.in_flight.wait_until(
                    0, self.progress.finished, self.request.wait_timeout_s
                )
        except KeyboardInterrupt:
            interrupted = True
        finally:
            save_batch(self.sessions, self.batch_id, self.tally, state)
            self.progress.close()
            if self.request.out is not None:
                write_results(self.request.out, self.lines, self.sessions)
        p, elapsed = self.progress, time.monotonic() - started
        return Report(
            self.batch_id, self.tally, p.done, p.failed, len(self.in_flight), p.audio_s,
            submit_s or elapsed, elapsed, interrupted,
        )

    def _submit_all(self) -> None:
        for item in self.items:
            prepared = self.submitter.prepare(item)
            if isinstance(prepared, Outcome):
                self._record(prepared)
                continue
            if (known := self.submitter.answered(item, prepared)) is not None:
                self._record(known)
                continue
            # Room for one more message: earlier jobs of this run (or left queued by an
            # interrupted one) must finish first.
            self.in_flight.wait_until(self.limit - 1, self.progress.finished)
            with deferred_interrupt():
                self._record(self.submitter.commit(item, prepared))

    def _record(self, outcome: Outcome) -> None:
        self.tally.add(outcome)
        if self.tally.handled % SAVE_EVERY == 0:  # GET /v1/batches/{id} shows it as it goes
            save_batch(self.sessions, self.batch_id, self.tally)
        pending_id = outcome.job_id if outcome.job_status not in TERMINAL else None
        if pending_id is not None:
            self.in_flight.add(pending_id)
        self.progress.submitted(final=pending_id is None)
        if self.request.out is not None and outcome.state is not ItemState.IGNORED:
            error = outcome.error.to_dict()["error"] if outcome.error else None
            self.lines.append(ResultLine(outcome.item.path, outcome.job_id, error))


def backfill_command(settings: Settings, args: Any) -> int:
    """``stt backfill``: exit 0 when every file is answered, 1 when any was rejected or failed
    (or the broker or database went away), 2 for a bad command line, 130 when interrupted."""
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import OperationalError as DatabaseError

    try:
        request = BackfillRequest(
            paths=list(args.paths), glob=args.glob, manifest=args.manifest,
            metadata=parse_metadata(args.metadata or []),
            callback_url=check_callback_url(args.callback_url, settings),
            decoder=args.decoder,
            wait=args.wait, wait_timeout_s=args.wait_timeout, out=args.out,
            max_in_flight=args.max_in_flight,
            retry_failed=args.retry_failed,
        )
        if not request.paths and request.manifest is None:
            raise SttError(ErrorCode.INVALID_REQUEST, "name folders, files or a --manifest")
        report = run_backfill(settings, request)
    except SttError as exc:
        print(f"stt backfill: {exc.code.value}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while walking the folders: nothing was queued yet
        print("stt backfill: interrupted before anything was queued", file=sys.stderr)
        return 130
    except (BrokerError, DatabaseError) as exc:
        print(f"stt backfill: stopped, {type(exc).__name__}: {exc}; nothing is lost,"
              " run the same command again", file=sys.stderr)
        return 1
    print(report.summary(), flush=True)
    if report.interrupted:
        return 130
    return 1 if report.tally.rejected or report.failed else 0
