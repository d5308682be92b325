"""The route's entry in the OpenAPI document (api/openapi.py merges it into the route table)."""

from __future__ import annotations

from api.openai_compat.answers import RENDERED
from api.openai_compat.form import TranscriptionForm
from api.openai_compat.shapes import OpenAIError, Transcription, TranscriptionVerbose
from api.openapi_routes import Schema, operation
from shared.speech.formats import MIMETYPES

ERRORS = {
    400: "Bad file or field (OpenAI's invalid_request_error; `code` says which)",
    401: "No valid API key (code invalid_api_key); only when API keys are configured",
    409: "An Idempotency-Key replayed with another body",
    413: "Upload over STT_MAX_UPLOAD_MB",
    500: "The job failed (its error, with job_id)",
    503: "Database or broker unavailable, the queue full, or too many calls already waiting "
    "(too_many_waiting); see Retry-After",
    504: "STT_OPENAI_WAIT_S passed (wait_timeout); the job goes on: poll /v1/jobs/{job_id}",
}
FORM = TranscriptionForm
JOB_ID = {"X-Job-Id": {"description": "The job behind the answer", "schema": {"type": "string"}}}
ANSWERS: Schema = {
    "application/json": {"schema": {"anyOf": [Transcription, TranscriptionVerbose]}},
    **{MIMETYPES[fmt].split(";")[0]: {"schema": {"type": "string"}} for fmt in RENDERED.values()},
}
OPENAI_PATHS: dict[str, Schema] = {
    "/v1/audio/transcriptions": {
        "post": operation(
            "OpenAI's createTranscription: upload, wait for the job, answer in OpenAI's shapes",
            {
                "200": {
                    "description": "As response_format asks",
                    "content": ANSWERS,
                    "headers": JOB_ID,
                },
                **{
                    str(code): {
                        "description": text,
                        "content": {"application/json": {"schema": OpenAIError}},
                    }
                    for code, text in ERRORS.items()
                },
            },
            body={"required": True, "content": {"multipart/form-data": {"schema": FORM}}},
        )
    }
}
