"""The answers of the OpenAI routes as typed dicts, for the OpenAPI document: OpenAI's
Transcription, TranscriptionVerbose (with its segments and words), TranscriptionDiarized, Model
and error object."""

from __future__ import annotations

from typing import Literal, NotRequired
from uuid import UUID

from pydantic import with_config
from typing_extensions import TypedDict

from api.response_models import CLOSED


@with_config(CLOSED)
class OpenAIErrorBody(TypedDict):
    message: str
    type: Literal["invalid_request_error", "server_error"]
    param: str | None
    code: str | None
    job_id: NotRequired[UUID]


@with_config(CLOSED)
class OpenAIError(TypedDict):
    """OpenAI's error object; ``code`` is the service's stable code (invalid_api_key for a
    bad key) and ``job_id`` names the job of a failed or timed-out wait"""

    error: OpenAIErrorBody


@with_config(CLOSED)
class Transcription(TypedDict):
    text: str


@with_config(CLOSED)
class TranscriptionWord(TypedDict):
    word: str
    start: float
    end: float


@with_config(CLOSED)
class TranscriptionSegment(TypedDict):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


@with_config(CLOSED)
class TranscriptionVerbose(TypedDict):
    """segments unless only word times were asked for; words only when asked for"""

    task: Literal["transcribe"]
    language: str
    duration: float
    text: str
    segments: NotRequired[list[TranscriptionSegment]]
    words: NotRequired[list[TranscriptionWord]]


@with_config(CLOSED)
class TranscriptionDiarizedSegment(TypedDict):
    type: Literal["transcript.text.segment"]
    id: str
    start: float
    end: float
    text: str
    speaker: str


@with_config(CLOSED)
class UsageDuration(TypedDict):
    type: Literal["duration"]
    seconds: float


@with_config(CLOSED)
class TranscriptionDiarized(TypedDict):
    """one segment per speaker turn; speakers A, B, ... (or a call's channel names)"""

    task: Literal["transcribe"]
    duration: float
    text: str
    segments: list[TranscriptionDiarizedSegment]
    usage: UsageDuration


@with_config(CLOSED)
class Model(TypedDict):
    """``created`` is when the API started; ``owned_by`` is this service"""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


@with_config(CLOSED)
class ModelList(TypedDict):
    object: Literal["list"]
    data: list[Model]
