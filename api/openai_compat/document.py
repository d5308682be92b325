"""The OpenAI routes' entries in the OpenAPI document (api/openapi.py merges them into the route
table)."""

from __future__ import annotations

from api.openai_compat.answers import RENDERED
from api.openai_compat.form import TranscriptionForm
from api.openai_compat.shapes import (
    Model,
    ModelList,
    OpenAIError,
    Transcription,
    TranscriptionDiarized,
    TranscriptionVerbose,
)
from api.openapi_routes import Schema, json_answer, operation, path_id
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
    "application/json": {
        "schema": {"anyOf": [Transcription, TranscriptionVerbose, TranscriptionDiarized]}
    },
    **{MIMETYPES[fmt].split(";")[0]: {"schema": {"type": "string"}} for fmt in RENDERED.values()},
}
MODEL_ERRORS = {
    401: ERRORS[401],
    404: "No model of that name here (model_not_found)",
    500: "Unexpected error",
    503: "Database unavailable",
}


def _errors(texts: dict[int, str]) -> dict[str, Schema]:
    return {
        str(code): {"description": text, "content": {"application/json": {"schema": OpenAIError}}}
        for code, text in texts.items()
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
                **_errors(ERRORS),
            },
            body={"required": True, "content": {"multipart/form-data": {"schema": FORM}}},
        )
    },
    "/v1/models": {
        "get": operation(
            "OpenAI's listModels: the names `model` selects here (default, STT_MODELS)",
            {
                "200": json_answer(ModelList, "The models offered"),
                **_errors({k: v for k, v in MODEL_ERRORS.items() if k != 404}),
            },
        )
    },
    "/v1/models/{model_id}": {
        "parameters": [path_id("model_id", "A name GET /v1/models lists")],
        "get": operation(
            "OpenAI's retrieveModel: one offered name",
            {"200": json_answer(Model, "The model"), **_errors(MODEL_ERRORS)},
        ),
    },
}
