"""What a client may send, as pydantic models: the handlers validate with them, and the OpenAPI
document (api/openapi.py) is generated from them, so the two cannot drift apart.

Every field runs its rule from api/field_rules.py before its typed check, and documents the
type a client sends (``json_schema_input_type``) while its annotation is what the handler gets
back. Fields are declared in the order the API has always checked them, which decides the
error a request with several mistakes gets. Rules that depend on the deployment read its
settings from the validation context: ``Model.model_validate(fields, context=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from api import field_rules as rule
from api.speaker_fields import SPEAKER_FIELDS, SpeakerFields, SpeakerForm
from shared.search.query import MAX_QUERY_CHARS
from shared.speech.formats import FORMATS
from shared.store.tables import JobStatus

QueueName = Literal["interactive", "bulk"]
Decoder = Literal["greedy", "beam"]
PayloadMode = Literal["full", "thin"]
Weight = Annotated[float, Field(ge=0, le=100)]
# What shapes a transcript besides the audio: stored on the job as its options.
DECODING_FIELDS = (
    "decoder",
    "hotwords",
    "hotword_weight",
    "language",
    "punctuate",
    "format_text",
    *SPEAKER_FIELDS,
)

AUDIO_PATH = "A file under STT_ALLOWED_AUDIO_ROOTS (instead of `file`)"
MODEL = "A model name this deployment offers (STT_MODELS)"
HOTWORDS = "Comma-separated words to favour (beam decoder)"
CALLBACK_URL = "http(s) URL called when the job ends (webhooks)"
METADATA = 'A JSON object (16 KiB at most), or the same as JSON text; "" is none'
PUNCTUATE = "Punctuation marks in the transcript (default true; AssemblyAI's name)"
FORMAT_TEXT = "Numbers as digits and capitals in the transcript (default true; AssemblyAI's name)"


def read(func: Callable[..., Any], sent: Any) -> BeforeValidator:
    """Run ``func`` on the raw value; the document says a client sends ``sent``."""
    return BeforeValidator(func, json_schema_input_type=sent)


# The written-transcript switches, as JSON sends them (the form's text variant is in JobUpload).
Punctuate = Annotated[
    bool | None, read(rule.flag("punctuate"), bool | None), Field(description=PUNCTUATE)
]
FormatText = Annotated[
    bool | None, read(rule.flag("format_text"), bool | None), Field(description=FORMAT_TEXT)
]


# A submission to POST /v1/jobs or /wav2vec2, as the JSON body sends it (docstrings of the
# models are their schemas' public descriptions).
class JobRequest(SpeakerFields):
    """null stands for an absent field where the field allows it"""

    # First: api/jobs.py has already checked it once, before the queue's room.
    callback_payload: Annotated[str, read(rule.callback_payload, PayloadMode | None)] = "full"
    queue: Annotated[str, read(rule.queue, QueueName)] = "interactive"
    model: Annotated[
        str, read(rule.model, str | None), Field(description=MODEL, validate_default=True)
    ] = ""
    metadata: Annotated[
        dict[str, Any],
        read(rule.metadata, dict[str, Any] | str | None),
        Field(description=METADATA),
    ] = Field(default_factory=dict)
    callback_url: Annotated[
        str | None, read(rule.callback_url, str | None), Field(description=CALLBACK_URL)
    ] = None
    decoder: Annotated[str | None, read(rule.decoder, Decoder)] = None
    hotwords: Annotated[
        list[str] | None, read(rule.hotwords, str | None), Field(description=HOTWORDS)
    ] = None
    hotword_weight: Annotated[float | None, read(rule.hotword_weight, Weight)] = None
    language: Annotated[str | None, read(rule.language, str | None)] = None
    punctuate: Punctuate = None
    format_text: FormatText = None
    audio_path: Annotated[
        str | None, read(rule.text_or_none, str | None), Field(description=AUDIO_PATH)
    ] = None

    def decoding_options(self) -> dict[str, Any]:
        """The options stored on the job: only those given (their order is the stored one)."""
        return self.model_dump(include=set(DECODING_FIELDS), exclude_none=True)


# The multipart form: the same fields as text, with the audio file. The form is validated as
# JobRequest (api/submission.py reads form and JSON body into one set of fields); this model
# only tells the document what a form sends.
class JobUpload(SpeakerForm, JobRequest):
    file: Annotated[bytes, Field(description="MP3, WAV, M4A, OGG or FLAC")] = b""
    callback_payload: Annotated[str, read(rule.callback_payload, PayloadMode)] = "full"
    model: Annotated[
        str, read(rule.model, str), Field(description=MODEL, validate_default=True)
    ] = ""
    metadata: Annotated[
        dict[str, Any],
        read(rule.metadata, str),
        Field(description="A JSON object, as text (16 KiB at most)"),
    ] = Field(default_factory=dict)
    callback_url: Annotated[
        str | None, read(rule.callback_url, str), Field(description=CALLBACK_URL)
    ] = None
    hotwords: Annotated[list[str] | None, read(rule.hotwords, str), Field(description=HOTWORDS)] = (
        None
    )
    language: Annotated[str | None, read(rule.language, str)] = None
    punctuate: Annotated[
        bool | None, read(rule.flag("punctuate"), str), Field(description=PUNCTUATE)
    ] = None
    format_text: Annotated[
        bool | None, read(rule.flag("format_text"), str), Field(description=FORMAT_TEXT)
    ] = None
    audio_path: Annotated[
        str | None, read(rule.text_or_none, str), Field(description=AUDIO_PATH)
    ] = None


# The batch route reads hotwords, hotword_weight and language as /v1/jobs does, but they were
# never part of its document; they stay out of it rather than appear there for the first time.
PATH_ITEM = "A server path; a non-string is rejected as an item, not the batch"
PathList = Annotated[list[Annotated[Any, Field(description=PATH_ITEM)]], Field(min_length=1)]


class BatchRequest(SpeakerFields):
    metadata: Annotated[
        dict[str, Any],
        read(rule.metadata, dict[str, Any] | str | None),
        Field(description=METADATA),
    ] = Field(default_factory=dict)
    callback_url: Annotated[str | None, read(rule.callback_url, str | None)] = None
    decoder: Annotated[str | None, read(rule.decoder, Decoder)] = None
    hotwords: SkipJsonSchema[Annotated[list[str] | None, read(rule.hotwords, Any)]] = None
    hotword_weight: SkipJsonSchema[Annotated[float | None, read(rule.hotword_weight, Any)]] = None
    language: SkipJsonSchema[Annotated[str | None, read(rule.language, Any)]] = None
    punctuate: Punctuate = None
    format_text: FormatText = None
    paths: Annotated[list[Any], read(rule.paths, PathList)]

    @model_validator(mode="before")
    @classmethod
    def _absent_paths_are_none(cls, fields: Any) -> Any:
        """An absent ``paths`` fails its own rule ("must be a non-empty JSON list"), after the
        other fields, as it always did; not as pydantic's "missing" before them."""
        return {"paths": None, **fields} if isinstance(fields, dict) else fields

    def decoding_options(self) -> dict[str, Any]:
        return self.model_dump(include=set(DECODING_FIELDS), exclude_none=True)


class JobListQuery(BaseModel):
    limit: Annotated[
        int,
        read(rule.page_limit(200), int),
        Field(description="Page size, clamped to the route's range"),
    ] = 50
    # Unknown statuses and cursors are refused by shared.jobs, after the page size.
    status: Annotated[str | None, read(rule.as_sent, JobStatus), Field(description="Filter")] = None
    cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None


SEARCH_TEXT = (
    'Words to find, with or without diacritics (all must match); "quoted words" as a phrase. '
    "Filter on metadata with metadata.KEY=VALUE (string values, exactly), as many as needed"
)
Page = Annotated[int, Field(description="Page size, clamped to the route's range")]
# An empty value (a form's blank field) is no filter, so the document allows it too.
Time = Annotated[datetime | None, read(rule.timestamp, datetime | Literal[""])]


class SearchQuery(BaseModel):
    q: Annotated[
        str,
        read(rule.search_text, Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]),
        Field(description=SEARCH_TEXT),
    ]
    limit: Annotated[int, read(rule.page_limit(100), int), Page] = 20
    cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None
    status: Annotated[str | None, read(rule.as_sent, JobStatus), Field(description="Filter")] = None
    created_after: Annotated[Time, Field(description="Jobs created at or after")] = None
    created_before: Annotated[Time, Field(description="Jobs created before")] = None
    batch_id: Annotated[
        UUID | None,
        read(rule.uuid_or_none, UUID | Literal[""]),
        Field(description="Jobs of this batch"),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _absent_q_is_none(cls, fields: Any) -> Any:
        """An absent ``q`` is refused by its rule (invalid_query), not as pydantic's missing."""
        return {"q": None, **fields} if isinstance(fields, dict) else fields


class BatchPageQuery(BaseModel):
    limit: Annotated[
        int,
        read(rule.page_limit(500), int),
        Field(description="Page size, clamped to the route's range"),
    ] = 100
    cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None


class TranscriptQuery(BaseModel):
    # An unknown format is refused by the renderer, once the job is known to be completed.
    format: Annotated[
        str, read(rule.as_sent, Literal[FORMATS]), Field(description="Default txt")
    ] = "txt"


class LegacyQuery(BaseModel):
    path: Annotated[
        str | None,
        read(rule.text_or_none, str),
        Field(description="Server path (else STT_DEFAULT_AUDIO)"),
    ] = None
    audio_path: Annotated[
        str | None, read(rule.text_or_none, str), Field(description="Same as `path`")
    ] = None
