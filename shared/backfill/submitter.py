"""Bulk backfill of archived recordings: server paths -> one ``bulk`` job per distinct content.

It takes the API's path (``shared.jobs.records.create_job``, commit, then
``shared.jobs.queue.enqueue_transcription``) and adds what a long run over an archive needs:

* a content key as the job's idempotency key, ``backfill:<sha256>:<engine+model+options hash>``,
  so a file already transcribed or already queued (by an earlier run, by another path to the
  same bytes, or by ``POST /v1/batches``) is never queued twice;
* ``jobs.enqueued_at``, written once the message is sent: a queued row without it was committed
  by a run that died before sending, and the next run that meets the file sends it;
* a batch row per run or request, holding what only the submitter knows (items refused at
  the door, items answered by an earlier job).

The command-line run over an archive (discovery window, progress, Ctrl-C) is
``shared.backfill.run``; ``POST /v1/batches`` calls ``shared.backfill.batches.submit_batch``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from shared.apikeys import scoped_idempotency_key
from shared.backfill.items import Item, ItemState, Outcome
from shared.errors import ErrorCode, SttError
from shared.jobs.paths import resolve_allowed
from shared.jobs.queue import enqueue_transcription
from shared.jobs.records import Submission, create_job
from shared.settings import Settings
from shared.speech.audio import detect_format
from shared.speech.engines.base import auto_decoding
from shared.store.sessions import rowcount
from shared.store.tables import Job, JobStatus, utcnow

BULK = "bulk"
KEY_PREFIX = "backfill:"
NOT_AUDIO = frozenset({ErrorCode.UNSUPPORTED_FORMAT, ErrorCode.EMPTY_AUDIO})


# --- keys and options ------------------------------------------------------------------------


def normalise_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """Spell the decoder out, so "default" and what it means name the same job (and key)."""
    default = auto_decoding(settings.engine, settings.decoder, settings.beam_width)
    result = {**options, "decoder": options.get("decoder") or default["decoder"]}
    if result["decoder"] == "beam":
        result.setdefault("beam_width", default["beam_width"])
    return result


def options_fingerprint(settings: Settings, options: dict[str, Any]) -> str:
    """Engine, model and decoding options: what else, besides the bytes, shapes a transcript."""
    material = {"engine": settings.engine, "model": settings.model, "options": options}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def backfill_key(sha256: str, fingerprint: str) -> str:
    """Fits jobs.idempotency_key (255): the model may be a long local path, so it is hashed."""
    return f"{KEY_PREFIX}{sha256}:{fingerprint}"


# --- submission ------------------------------------------------------------------------------


class Submitter:
    """Turns one server path into exactly one bulk job, whatever happened before."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], celery: Celery,
        batch_id: uuid.UUID, *, options: dict[str, Any] | None = None,
        callback_url: str | None = None, retry_failed: bool = False, owner: str | None = None,
    ) -> None:
        """``owner``: the API key's name (None for the CLI and an open API); its jobs are its
        own, and an earlier job answers an item only when it has the same owner."""
        self.settings, self.sessions, self.celery = settings, sessions, celery
        self.batch_id = batch_id
        self.owner = owner
        self.options = normalise_options(settings, options or {})
        self.fingerprint = options_fingerprint(settings, self.options)
        self.callback_url = callback_url
        self.retry_failed = retry_failed

    def submit(self, item: Item) -> Outcome:
        prepared = self.prepare(item)
        return prepared if isinstance(prepared, Outcome) else self.commit(item, prepared)

    def prepare(self, item: Item) -> Submission | Outcome:
        """Check the path and read the file (slow for long recordings, safe to interrupt)."""
        try:
            path = resolve_allowed(item.path, self.settings.allowed_audio_roots)
            fmt = detect_format(path)
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except SttError as exc:
            ignored = item.walked and exc.code in NOT_AUDIO
            return Outcome(item, ItemState.IGNORED if ignored else ItemState.REJECTED, error=exc)
        except OSError as exc:
            error = SttError(ErrorCode.FILE_NOT_FOUND, f"cannot read {item.path}: {exc}")
            return Outcome(item, ItemState.REJECTED, error=error)
        return Submission(
            job_id=uuid.uuid4(), source="path", input_path=path, original_filename=path.name,
            sha256=digest, input_format=fmt, queue=BULK, meta=item.meta,
            callback_url=self.callback_url, options=self.options, api_key_id=self.owner,
            idempotency_key=scoped_idempotency_key(
                self.owner, backfill_key(digest, self.fingerprint)
            ),
        )

    def answered(self, item: Item, sub: Submission) -> Outcome | None:
        """The earlier job's outcome when this item needs no message at all, else None.

        Lets a run skip what is done or already queued without waiting for room in its window.
        """
        columns = (Job.id, Job.status, Job.enqueued_at)  # not the stored transcript
        with self.sessions() as session:
            row = session.execute(
                select(*columns).where(Job.idempotency_key == sub.idempotency_key)
            ).first()
        if row is None or self._needs_send(row.status, row.enqueued_at):
            return None
        return Outcome(item, ItemState.EXISTING, row.id, row.status)

    def commit(self, item: Item, sub: Submission) -> Outcome:
        """Create the row (create_job answers an existing key with its job), and send it
        unless a message for it is already out."""
        with self.sessions() as session:
            job, created = self._create(session, sub)
            if created:
                self._send(session, job)
                return Outcome(item, ItemState.QUEUED, job.id, JobStatus.QUEUED)
            return self._existing(session, item, job)

    def _find(self, session: Session, key: str | None) -> Job | None:
        return session.scalar(select(Job).where(Job.idempotency_key == key))

    def _create(self, session: Session, sub: Submission) -> tuple[Job, bool]:
        try:
            return create_job(session, sub)
        except SttError as exc:  # the same content under another path or other metadata
            if exc.code != ErrorCode.IDEMPOTENCY_CONFLICT:
                raise
            session.rollback()
            job = self._find(session, sub.idempotency_key)
            if job is None:
                raise
            return job, False

    def _needs_send(self, status: str, enqueued_at: datetime | None) -> bool:
        unsent = status == JobStatus.QUEUED and enqueued_at is None
        return unsent or (self.retry_failed and status == JobStatus.FAILED)

    def _existing(self, session: Session, item: Item, job: Job) -> Outcome:
        if job.status == JobStatus.QUEUED and job.enqueued_at is None:
            self._send(session, job)  # committed by a run that stopped before sending it
            return Outcome(item, ItemState.QUEUED, job.id, job.status, recovered=True)
        if self.retry_failed and job.status == JobStatus.FAILED and self._reset(session, job):
            self._send(session, job)
            return Outcome(item, ItemState.QUEUED, job.id, JobStatus.QUEUED, recovered=True)
        return Outcome(item, ItemState.EXISTING, job.id, job.status)

    def _reset(self, session: Session, job: Job) -> bool:
        """Back to queued, conditionally: another run retrying it at once resets it only once."""
        reset = rowcount(
            session,
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.FAILED)
            .values(
                status=JobStatus.QUEUED, attempts=0, progress=0.0, error_code=None,
                error_message=None, started_at=None, finished_at=None, enqueued_at=None,
            )
        )
        session.commit()
        return bool(reset)

    def _send(self, session: Session, job: Job) -> None:
        enqueue_transcription(self.celery, self.settings, job.id, job.queue)
        values: dict[str, Any] = {"enqueued_at": utcnow()}
        if job.batch_id is None:
            values["batch_id"] = self.batch_id
        session.execute(update(Job).where(Job.id == job.id).values(**values))
        session.commit()
