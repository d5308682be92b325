"""Stable error codes and the one exception type that carries them.

Clients branch on ``code``, never on the message, so codes are a public contract: add new ones,
never rename. Each code maps to the HTTP status the API answers when it is raised at submission;
the same codes are stored on a job that fails later in the worker.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    MISSING_AUDIO = "missing_audio"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNDECODABLE_AUDIO = "undecodable_audio"
    DECODER_UNAVAILABLE = "decoder_unavailable"
    EMPTY_AUDIO = "empty_audio"
    SILENT_AUDIO = "silent_audio"
    AUDIO_TOO_LONG = "audio_too_long"
    UPLOAD_TOO_LARGE = "upload_too_large"
    PATH_NOT_ALLOWED = "path_not_allowed"
    FILE_NOT_FOUND = "file_not_found"
    NOT_A_FILE = "not_a_file"
    JOB_NOT_FOUND = "job_not_found"
    JOB_NOT_FINISHED = "job_not_finished"
    JOB_IN_PROGRESS = "job_in_progress"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    UNKNOWN_MODEL = "unknown_model"
    LEGACY_TIMEOUT = "legacy_timeout"
    BROKER_UNAVAILABLE = "broker_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    MODEL_LOAD_FAILED = "model_load_failed"
    TRANSCRIPTION_FAILED = "transcription_failed"
    WORKER_LOST = "worker_lost"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"
    WEBHOOKS_DISABLED = "webhooks_disabled"
    CALLBACK_URL_NOT_ALLOWED = "callback_url_not_allowed"
    NO_CALLBACK_URL = "no_callback_url"
    BATCH_NOT_FOUND = "batch_not_found"
    BATCH_TOO_LARGE = "batch_too_large"
    UNAUTHORIZED = "unauthorized"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    QUEUE_FULL = "queue_full"
    WAIT_TIMEOUT = "wait_timeout"
    TOO_MANY_WAITING = "too_many_waiting"
    INVALID_QUERY = "invalid_query"
    QUERY_TOO_LONG = "query_too_long"
    INVALID_SPEAKER_COUNT = "invalid_speaker_count"
    INVALID_CHANNEL_NAMES = "invalid_channel_names"
    MODEL_NOT_FOUND = "model_not_found"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.MISSING_AUDIO: 400,
    ErrorCode.UNSUPPORTED_FORMAT: 415,
    ErrorCode.UNDECODABLE_AUDIO: 422,
    ErrorCode.DECODER_UNAVAILABLE: 422,
    ErrorCode.EMPTY_AUDIO: 422,
    ErrorCode.SILENT_AUDIO: 422,
    ErrorCode.AUDIO_TOO_LONG: 422,
    ErrorCode.UPLOAD_TOO_LARGE: 413,
    ErrorCode.PATH_NOT_ALLOWED: 403,
    ErrorCode.FILE_NOT_FOUND: 404,
    ErrorCode.NOT_A_FILE: 400,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.JOB_NOT_FINISHED: 409,
    ErrorCode.JOB_IN_PROGRESS: 409,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.UNKNOWN_MODEL: 400,
    ErrorCode.LEGACY_TIMEOUT: 504,
    ErrorCode.BROKER_UNAVAILABLE: 503,
    ErrorCode.DATABASE_UNAVAILABLE: 503,
    ErrorCode.MODEL_LOAD_FAILED: 500,
    ErrorCode.TRANSCRIPTION_FAILED: 500,
    ErrorCode.WORKER_LOST: 500,
    ErrorCode.TIME_LIMIT_EXCEEDED: 500,
    ErrorCode.TOO_MANY_ATTEMPTS: 500,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.WEBHOOKS_DISABLED: 400,
    ErrorCode.CALLBACK_URL_NOT_ALLOWED: 400,
    ErrorCode.NO_CALLBACK_URL: 409,
    ErrorCode.BATCH_NOT_FOUND: 404,
    ErrorCode.BATCH_TOO_LARGE: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.MEMORY_LIMIT_EXCEEDED: 422,
    ErrorCode.QUEUE_FULL: 503,
    ErrorCode.WAIT_TIMEOUT: 504,
    ErrorCode.TOO_MANY_WAITING: 503,
    ErrorCode.INVALID_QUERY: 400,
    ErrorCode.QUERY_TOO_LONG: 400,
    ErrorCode.INVALID_SPEAKER_COUNT: 400,
    ErrorCode.INVALID_CHANNEL_NAMES: 400,
    ErrorCode.MODEL_NOT_FOUND: 404,
}


class SttError(Exception):
    """An expected failure with a stable code; anything else is a bug."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code.value, "message": self.message}}


class RetryLater(SttError):
    """A refusal that passes: answered with Retry-After, so clients back off and come back."""

    def __init__(self, code: ErrorCode, message: str, retry_after_s: int) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s
