"""What the API answers, as typed dicts pydantic turns into the OpenAPI document's schemas.

The handlers build their answers as plain dicts (api/serialize.py and the blueprints) and Flask
writes them out as they are: passing them through models at runtime could only respell numbers
or dates, or turn a good answer into a 500. Instead tests/test_openapi.py fuzzes the app and
holds every real answer to the schemas generated from these shapes. Closed shapes
(``extra="forbid"``) allow no other key, so a new field has to be added here before it can be
sent. Docstrings here are the schemas' public descriptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired
from uuid import UUID

from pydantic import ConfigDict, Field, RootModel, with_config

# pydantic reads a TypedDict's fields from typing_extensions' class only, before Python 3.12.
from typing_extensions import TypedDict

from shared.errors import ErrorCode
from shared.store.tables import JobStatus

CLOSED = ConfigDict(extra="forbid")


@with_config(CLOSED)
class ErrorBody(TypedDict):
    code: ErrorCode
    message: str


@with_config(CLOSED)
class Error(TypedDict):
    error: ErrorBody


@with_config(CLOSED)
class JobLinks(TypedDict):
    self: str
    transcript: str


@with_config(CLOSED)
class Speakers(TypedDict):
    """Who said what, as the worker found it: ``mode`` is "channels" (a two-channel call split
    per channel), "diarization" (speakers told apart on one channel) or "none"; ``count`` the
    speakers (null for "none"), ``labels`` as the transcript writes them, ``channels`` the
    audio's channel count, ``notes`` what was decided and why (e.g. fake stereo taken as mono)."""

    mode: Literal["none", "channels", "diarization"]
    count: int | None
    labels: list[str]
    channels: int
    notes: list[str]


@with_config(CLOSED)
class Job(TypedDict):
    id: UUID
    status: JobStatus
    queue: str
    source: Literal["upload", "path"]
    original_filename: str | None
    input_format: str | None
    sha256: str | None
    duration_s: float | None
    progress: float
    transcript: str | None
    processed_path: str | None
    engine: str | None
    model_id: str | None
    model_license: str | None
    decoding_options: dict[str, Any]
    speakers: Speakers | None
    attempts: int
    processing_s: float | None
    error: ErrorBody | None
    metadata: dict[str, Any]
    callback_url: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: JobLinks


@with_config(CLOSED)
class JobList(TypedDict):
    jobs: list[Job]
    next_cursor: str | None


@with_config(CLOSED)
class HitJob(TypedDict):
    status: JobStatus
    created_at: datetime
    original_filename: str | None
    duration_s: float | None
    batch_id: UUID | None


@with_config(CLOSED)
class HitLinks(TypedDict):
    job: str
    audio: str


@with_config(CLOSED)
class SearchHit(TypedDict):
    """One segment found. `highlight` is `text` HTML-escaped with each matched word inside
    <mark>…</mark>; `marks` are the same words as [start, end) character offsets into `text`.
    `form` says which text matched: the written transcript, or the recogniser's spoken words."""

    job_id: UUID
    segment: int
    start: float
    end: float
    text: str
    highlight: str
    marks: list[Annotated[list[int], Field(min_length=2, max_length=2)]]
    form: Literal["written", "spoken"]
    metadata: dict[str, Any]
    job: HitJob
    links: HitLinks


@with_config(CLOSED)
class SearchPage(TypedDict):
    """Best first: matches with the diacritics typed, then the rest, each by relevance"""

    results: list[SearchHit]
    next_cursor: str | None


@with_config(CLOSED)
class Delivery(TypedDict):
    id: int
    event_id: str
    event_type: str
    attempt: int
    state: Literal["pending", "succeeded", "failed", "gave_up"]
    created_at: datetime | None
    attempted_at: datetime | None
    status_code: int | None
    latency_ms: float | None
    error: str | None
    next_attempt_at: datetime | None


@with_config(CLOSED)
class DeliveryList(TypedDict):
    job_id: UUID
    deliveries: list[Delivery]


@with_config(CLOSED)
class Redelivery(TypedDict):
    delivery: Delivery


@with_config(CLOSED)
class ItemLinks(TypedDict):
    job: str


@with_config(CLOSED)
class BatchItem(TypedDict):
    path: str
    status: Literal["queued", "existing", "rejected", "ignored"]
    job_id: UUID | None
    job_status: str | None
    error: ErrorBody | None
    links: NotRequired[ItemLinks]


@with_config(CLOSED)
class BatchCounts(TypedDict):
    total: int
    queued: int
    existing: int
    rejected: int


@with_config(CLOSED)
class BatchLinks(TypedDict):
    self: str


@with_config(CLOSED)
class Batch(TypedDict):
    id: UUID
    source: Literal["cli", "api"]
    state: Literal["submitting", "submitted", "interrupted"]
    done: bool
    items: BatchCounts
    jobs_by_status: dict[str, int]
    rejected: list[dict[str, Any]]
    metadata: dict[str, Any]
    callback_url: str | None
    created_at: datetime
    submitted_at: datetime | None
    links: BatchLinks
    results: NotRequired[list[BatchItem]]  # when the batch is created
    jobs: NotRequired[list[Job]]  # on a read, with next_cursor
    next_cursor: NotRequired[str | None]


@with_config(CLOSED)
class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    workers: list[dict[str, Any]]
    warnings: list[str]


@with_config(CLOSED)
class Health(TypedDict):
    status: Literal["ok"]


@with_config(CLOSED)
class WebConfig(TypedDict):
    max_duration_s: float
    max_upload_mb: float
    formats: list[str]
    auth_required: bool


@with_config(CLOSED)
class LegacyAnswer(TypedDict):
    """The first version's shape; failures also carry `error` and `job_id`"""

    status: Literal["success", "error"]
    transcript: str | None
    path: str | None
    job_id: NotRequired[UUID]
    error: NotRequired[ErrorBody]


class LegacyError(RootModel[Error | LegacyAnswer]):
    """Refused at the door (the error shape), or the legacy shape of a failed job"""
