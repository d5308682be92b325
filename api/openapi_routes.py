"""The route table of the OpenAPI document: what pydantic cannot know about the models.

Which route takes which request model, answers which shapes with which statuses, and which
error codes each status stands for. Schemas appear here as the model classes themselves;
api/openapi.py replaces each with the schema pydantic generates for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api import request_models as ask
from api import response_models as answer
from api.submission import MAX_IDEMPOTENCY_KEY
from shared.speech.formats import MIMETYPES

Schema = dict[str, Any]

ERROR_TEXT = {
    400: "Invalid request (invalid_request, missing_audio, unknown_model, invalid_query, ...)",
    401: "No valid API key (unauthorized); only when API keys are configured",
    403: "audio_path outside STT_ALLOWED_AUDIO_ROOTS (path_not_allowed)",
    404: "Not found (job_not_found, file_not_found, batch_not_found, not_found)",
    409: "Conflict (job_not_finished, job_in_progress, idempotency_conflict, no_callback_url)",
    413: "Upload over STT_MAX_UPLOAD_MB (upload_too_large)",
    415: "Not a supported audio format, judged by content (unsupported_format)",
    416: "Range not satisfiable",
    422: "Audio refused (empty_audio, ...)",
    500: "Unexpected error (internal_error)",
    503: "Database or broker unavailable, the queue full (queue_full), or too many calls "
    "already waiting for a transcript (too_many_waiting); see Retry-After",
    504: "The legacy route waited STT_LEGACY_WAIT_S (legacy_timeout)",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "The job's URL", "schema": {"type": "string"}}}
WAV = {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}


def json_answer(shape: type | Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": shape}},
    }
    if headers:
        response["headers"] = headers
    return response


def text_answer(media: str, description: str) -> Schema:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def errors(*codes: int, keyed: bool = True) -> dict[str, Schema]:
    """The error answers of an operation: also 500 and, behind a key or a database, 401/503."""
    always = {401, 500, 503} if keyed else {500}
    return {
        str(code): {"$ref": f"#/components/responses/E{code}"} for code in sorted({*codes, *always})
    }


def operation(
    summary: str,
    responses: dict[str, Schema],
    *,
    query: type[BaseModel] | None = None,
    body: Schema | None = None,
    headers: tuple[Schema, ...] = (),
    open_route: bool = False,
) -> Schema:
    """``query``: a model api/openapi.py expands into query parameters."""
    op: Schema = {"summary": summary, "responses": responses}
    if query is not None or headers:
        op["parameters"] = [*headers, *([query] if query is not None else [])]
    if body is not None:
        op["requestBody"] = body
    if open_route:
        op["security"] = []
    return op


def open_get(summary: str, responses: dict[str, Schema]) -> Schema:
    """A GET reachable without a key even when keys are configured."""
    return {"get": operation(summary, responses, open_route=True)}


def path_id(name: str, what: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "string"},
    }


JOB_ID = [path_id("job_id", "The job's id")]
SUBMISSION = {
    "multipart/form-data": {"schema": ask.JobUpload},
    "application/json": {"schema": ask.JobRequest},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
    "description": "Same key and body: the same job, not a second one",
}
LEGACY = {
    method: operation(
        "The first version's route: submit and wait (STT_LEGACY_WAIT_S)",
        {
            "200": json_answer(answer.LegacyAnswer, "Transcribed"),
            **{
                str(code): json_answer(answer.LegacyError, ERROR_TEXT[code])
                for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 504)
            },
        },
        query=ask.LegacyQuery,
        body={"required": False, "content": SUBMISSION} if method == "post" else None,
    )
    for method in ("get", "post")
}

PATHS: dict[str, Schema] = {
    "/healthz": open_get("Liveness", {"200": json_answer(answer.Health, "Alive")}),
    "/readyz": open_get(
        "Readiness: database, queue and a recent worker",
        {
            "200": json_answer(answer.Readiness, "Ready"),
            "503": json_answer(answer.Readiness, "Not ready"),
        },
    ),
    "/metrics": open_get("Prometheus metrics", {"200": text_answer("text/plain", "Metrics")}),
    "/": open_get("The web page", {"200": text_answer("text/html", "HTML")}),
    "/web/config": open_get(
        "Limits the web page shows, and whether it must ask for an API key",
        {"200": json_answer(answer.WebConfig, "Limits and whether a key is needed")},
    ),
    "/static/{filename}": {
        "parameters": [path_id("filename", "A file under api/static")],
        **open_get(
            "The web page's static files",
            {
                "200": {"description": "The file", "content": {"*/*": {"schema": {}}}},
                "304": {"description": "Not modified"},
                **errors(404, keyed=False),
            },
        ),
    },
    "/openapi.json": open_get(
        "This document", {"200": json_answer({"type": "object"}, "OpenAPI 3")}
    ),
    "/v1/jobs": {
        "post": operation(
            "Submit audio (upload `file` or a server `audio_path`)",
            {
                "200": json_answer(
                    answer.Job, "Replay of an Idempotency-Key: the earlier job", LOCATION
                ),
                "202": json_answer(answer.Job, "Accepted and queued", LOCATION),
                **errors(400, 403, 404, 409, 413, 415, 422),
            },
            headers=(IDEMPOTENCY_KEY,),
            body={"required": True, "content": SUBMISSION},
        ),
        "get": operation(
            "List jobs, newest first (a key sees only its own)",
            {"200": json_answer(answer.JobList, "A page of jobs"), **errors(400)},
            query=ask.JobListQuery,
        ),
    },
    "/v1/jobs/{job_id}": {
        "parameters": JOB_ID,
        "get": operation("Poll a job", {"200": json_answer(answer.Job, "The job"), **errors(404)}),
        "delete": operation(
            "Cancel a queued job, or delete a finished one and its files",
            {
                "200": json_answer(answer.Job, "Canceled"),
                "204": {"description": "Deleted"},
                **errors(404, 409),
            },
        ),
    },
    "/v1/jobs/{job_id}/transcript": {
        "parameters": JOB_ID,
        "get": operation(
            "The transcript of a completed job",
            {
                "200": {
                    "description": "The transcript in the asked format",
                    "content": {
                        media.split(";")[0]: {"schema": {}} for media in MIMETYPES.values()
                    },
                },
                **errors(400, 404, 409),
            },
            query=ask.TranscriptQuery,
        ),
    },
    "/v1/jobs/{job_id}/audio": {
        "parameters": JOB_ID,
        "get": operation(
            "The processed audio (16 kHz mono WAV), with Range support",
            {
                "200": {"description": "WAV", "content": WAV},
                "206": {"description": "Part", "content": WAV},
                "304": {"description": "Not modified"},
                **errors(404, 409, 416),
            },
        ),
    },
    "/v1/jobs/{job_id}/deliveries": {
        "parameters": JOB_ID,
        "get": operation(
            "Webhook delivery attempts of the job",
            {"200": json_answer(answer.DeliveryList, "Attempts"), **errors(404)},
        ),
        "post": operation(
            "Send the job's webhook again now",
            {"202": json_answer(answer.Redelivery, "Due now"), **errors(400, 404, 409)},
        ),
    },
    "/v1/batches": {
        "post": operation(
            "Queue many server paths on the bulk queue",
            {
                "202": json_answer(
                    answer.Batch, "Each item answered on its own (`results`)", LOCATION
                ),
                **errors(400),
            },
            body={"required": True, "content": {"application/json": {"schema": ask.BatchRequest}}},
        )
    },
    "/v1/batches/{batch_id}": {
        "parameters": [path_id("batch_id", "The batch's id")],
        "get": operation(
            "A batch, its counts and a page of its jobs (oldest first)",
            {"200": json_answer(answer.Batch, "The batch"), **errors(400, 404)},
            query=ask.BatchPageQuery,
        ),
    },
    "/v1/search": {
        "get": operation(
            "Search completed transcripts, with or without diacritics (a key finds its own)",
            {
                "200": json_answer(answer.SearchPage, "A page of matching segments"),
                **errors(400),
            },
            query=ask.SearchQuery,
        ),
    },
    "/wav2vec2": LEGACY,
}
