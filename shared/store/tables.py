"""The jobs table and the workers' heartbeat table (SQLAlchemy 2.x typed mappings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite would otherwise hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class Job(Base):
    __tablename__ = "jobs"

    # The id doubles as the Celery task id, so a broker message always names its row.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.QUEUED)
    queue: Mapped[str] = mapped_column(String(32), default="interactive")
    source: Mapped[str] = mapped_column(String(16))  # "upload" | "path"
    original_filename: Mapped[str | None] = mapped_column(String(512))
    input_path: Mapped[str] = mapped_column(Text)
    processed_path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    input_format: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[float | None] = mapped_column(Float)
    transcript: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    engine: Mapped[str | None] = mapped_column(String(32))
    model_id: Mapped[str | None] = mapped_column(String(512))
    model_license: Mapped[str | None] = mapped_column(String(64))
    decoding_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    processing_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # "metadata" is reserved by SQLAlchemy's declarative base; the column keeps the API's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    callback_url: Mapped[str | None] = mapped_column(Text)
    # Webhook body: "full" carries the transcript, "thin" only the event (migration 0002).
    callback_payload: Mapped[str] = mapped_column(String(8), default="full", server_default="full")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Backfill (migration 0003): the batch that created the job, and when its message was sent.
    # A queued row with no enqueued_at was committed but never sent (a crash in between): the
    # next backfill of the same file sends it. Not a foreign key, so SQLite adds it in place.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    # The API key (its name) that submitted the job (migration 0004): when keys are configured,
    # a key sees only its own jobs. None: submitted while the API was open, or by the CLI.
    api_key_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_jobs_api_key_id_created_at", "api_key_id", "created_at"),)


class Worker(Base):
    """Heartbeats: /readyz needs to know a worker was seen recently and what it serves."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(Text)
    engine: Mapped[str | None] = mapped_column(String(32))
    model_id: Mapped[str | None] = mapped_column(String(512))
    model_license: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(32))
    fallback: Mapped[bool] = mapped_column(default=False)
    model_note: Mapped[str | None] = mapped_column(Text)
    compute: Mapped[str | None] = mapped_column(Text)  # where the model runs, how it was chosen
    formatting: Mapped[str | None] = mapped_column(Text)  # written-text models, or why not
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class BatchState(StrEnum):
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    INTERRUPTED = "interrupted"


class Batch(Base):
    """One backfill run or POST /v1/batches: what was asked, and what became of each item.

    Job statuses are counted live from ``jobs.batch_id``; the columns here keep what only the
    submitter knows: items refused at the door and items answered by an existing job.
    """

    __tablename__ = "batches"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    source: Mapped[str] = mapped_column(String(16))  # "cli" | "api"
    state: Mapped[str] = mapped_column(String(16), default=BatchState.SUBMITTING)
    total_items: Mapped[int] = mapped_column(Integer, default=0)
    queued_items: Mapped[int] = mapped_column(Integer, default=0)
    existing_items: Mapped[int] = mapped_column(Integer, default=0)
    rejected_items: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    callback_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column()
    api_key_id: Mapped[str | None] = mapped_column(String(64))  # the submitting key's name


class DeliveryState(StrEnum):
    PENDING = "pending"  # this attempt is due at next_attempt_at (or being sent)
    SUCCEEDED = "succeeded"  # the receiver answered 2xx
    FAILED = "failed"  # this attempt failed; the next one is the row with attempt + 1
    GAVE_UP = "gave_up"  # failed and no more attempts (410, schedule exhausted, refused URL)


class WebhookDelivery(Base):
    """One row per delivery attempt of a job's terminal event: the database says what is due.

    ``event_id`` (the ``webhook-id`` header) is the same for every attempt of one event, so
    receivers can drop repeats. The pending row is the only one a worker may send; it is
    claimed with conditional UPDATEs (``enqueued_at`` by the sweeper, ``claim_token`` and
    ``sending_until`` by the sender), so several workers never send one attempt twice.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "attempt", name="uq_webhook_deliveries_event_attempt"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    event_type: Mapped[str] = mapped_column(String(16))  # the job status: completed|failed|...
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    attempted_at: Mapped[datetime | None] = mapped_column()
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    sending_until: Mapped[datetime | None] = mapped_column()
    claim_token: Mapped[str | None] = mapped_column(String(32))


class ApiKey(Base):
    """A client key created with ``stt apikey create``: only its SHA-256 is stored.

    ``key_prefix`` (the key's first characters, not enough to guess the rest) finds the row, so
    the secret part is only ever compared as a hash, in constant time. A revoked key keeps its
    row (``revoked_at``); the name is unique among keys that are not revoked.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        Index(
            "uq_api_keys_active_name", "name", unique=True,
            sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64))
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()
