"""The OpenAPI 3 document at ``/openapi.json``, written by hand and checked by schemathesis.

Hand-written rather than generated, so it says what clients may rely on (every route, every
status it answers, the one error shape). tests/test_openapi.py fuzzes the app against it and
fails on any response it does not describe: a new field, status or route must be added here.
The error-code enum comes from shared.errors, so a new code is documented the moment it exists.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared.errors import ErrorCode
from shared.speech.formats import MIMETYPES
from shared.store.tables import JobStatus

bp = Blueprint("openapi", __name__)
Schema = dict[str, Any]

ERROR_TEXT = {
    400: "Invalid request (invalid_request, missing_audio, unknown_model, ...)",
    401: "No valid API key (unauthorized); only when API keys are configured",
    403: "audio_path outside STT_ALLOWED_AUDIO_ROOTS (path_not_allowed)",
    404: "Not found (job_not_found, file_not_found, batch_not_found, not_found)",
    409: "Conflict (job_not_finished, job_in_progress, idempotency_conflict, no_callback_url)",
    413: "Upload over STT_MAX_UPLOAD_MB (upload_too_large)",
    415: "Not a supported audio format, judged by content (unsupported_format)",
    416: "Range not satisfiable",
    422: "Audio refused (empty_audio, ...)",
    500: "Unexpected error (internal_error)",
    503: "Database or broker unavailable, or the queue full (queue_full); see Retry-After",
    504: "The legacy route waited STT_LEGACY_WAIT_S (legacy_timeout)",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def _object(properties: dict[str, Schema], closed: bool = True) -> Schema:
    """Every listed property is always present; ``closed``: no others may appear."""
    schema: Schema = {"type": "object", "properties": properties, "required": list(properties)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _json(schema: Schema, description: str, headers: dict | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(*codes: int, keyed: bool = True) -> dict[str, Schema]:
    """The error answers of an operation: also 500 and, behind a key or a database, 401/503."""
    always = {401, 500, 503} if keyed else {500}
    return {
        str(code): {"$ref": f"#/components/responses/E{code}"} for code in sorted({*codes, *always})
    }


def _path_id(name: str, what: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": _string()}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PAGE = [
    _query("limit", {"type": "integer"}, "Page size, clamped to the route's range"),
    _query("cursor", _string(), "next_cursor of the previous page"),
]
ISO = _string(format="date-time")
ERROR_BODY = _object({"code": _string(enum=[c.value for c in ErrorCode]), "message": _string()})

SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": ERROR_BODY}),
    "Job": _object(
        {
            "id": _string(format="uuid"),
            "status": _string(enum=[s.value for s in JobStatus]),
            "queue": _string(),
            "source": _string(enum=["upload", "path"]),
            "original_filename": _nullable(_string()),
            "input_format": _nullable(_string()),
            "sha256": _nullable(_string()),
            "duration_s": _nullable({"type": "number"}),
            "progress": {"type": "number"},
            "transcript": _nullable(_string()),
            "processed_path": _nullable(_string()),
            "engine": _nullable(_string()),
            "model_id": _nullable(_string()),
            "model_license": _nullable(_string()),
            "decoding_options": {"type": "object"},
            "attempts": {"type": "integer"},
            "processing_s": _nullable({"type": "number"}),
            "error": _nullable(ERROR_BODY),
            "metadata": {"type": "object"},
            "callback_url": _nullable(_string()),
            "created_at": ISO,
            "started_at": _nullable(ISO),
            "finished_at": _nullable(ISO),
            "links": _object({"self": _string(), "transcript": _string()}),
        }
    ),
    "JobList": _object(
        {"jobs": {"type": "array", "items": _ref("Job")}, "next_cursor": _nullable(_string())}
    ),
    "Delivery": _object(
        {
            "id": {"type": "integer"},
            "event_id": _string(),
            "event_type": _string(),
            "attempt": {"type": "integer"},
            "state": _string(enum=["pending", "succeeded", "failed", "gave_up"]),
            "created_at": _nullable(ISO),
            "attempted_at": _nullable(ISO),
            "status_code": _nullable({"type": "integer"}),
            "latency_ms": _nullable({"type": "number"}),
            "error": _nullable(_string()),
            "next_attempt_at": _nullable(ISO),
        }
    ),
    "BatchItem": {
        **_object(
            {
                "path": _string(),
                "status": _string(enum=["queued", "existing", "rejected", "ignored"]),
                "job_id": _nullable(_string(format="uuid")),
                "job_status": _nullable(_string()),
                "error": _nullable(ERROR_BODY),
                "links": _object({"job": _string()}),
            }
        ),
        "required": ["path", "status", "job_id", "job_status", "error"],
    },
    "Batch": {
        **_object(
            {
                "id": _string(format="uuid"),
                "source": _string(enum=["cli", "api"]),
                "state": _string(enum=["submitting", "submitted", "interrupted"]),
                "done": {"type": "boolean"},
                "items": _object(
                    {k: {"type": "integer"} for k in ("total", "queued", "existing", "rejected")}
                ),
                "jobs_by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
                "rejected": {"type": "array", "items": {"type": "object"}},
                "metadata": {"type": "object"},
                "callback_url": _nullable(_string()),
                "created_at": ISO,
                "submitted_at": _nullable(ISO),
                "links": _object({"self": _string()}),
                "results": {"type": "array", "items": _ref("BatchItem")},
                "jobs": {"type": "array", "items": _ref("Job")},
                "next_cursor": _nullable(_string()),
            }
        ),
        "required": [
            "id",
            "source",
            "state",
            "done",
            "items",
            "jobs_by_status",
            "rejected",
            "metadata",
            "callback_url",
            "created_at",
            "submitted_at",
            "links",
        ],
    },
    "Readiness": _object(
        {
            "status": _string(enum=["ready", "not ready"]),
            "checks": {"type": "object", "additionalProperties": _string()},
            "workers": {"type": "array", "items": {"type": "object"}},
            "warnings": {"type": "array", "items": _string()},
        }
    ),
    "LegacyAnswer": {
        "type": "object",
        "description": "The first version's shape; failures also carry `error` and `job_id`",
        "properties": {
            "status": _string(enum=["success", "error"]),
            "transcript": _nullable(_string()),
            "path": _nullable(_string()),
            "job_id": _string(format="uuid"),
            "error": ERROR_BODY,
        },
        "required": ["status", "transcript", "path"],
        "additionalProperties": False,
    },
    "LegacyError": {
        "description": "Refused at the door (the error shape), or the legacy shape of a failed job",
        "oneOf": [_ref("Error"), {**_ref("LegacyAnswer")}],
    },
}

METADATA_IN: Schema = {
    "description": 'A JSON object (16 KiB at most), or the same as JSON text; "" is none',
    "oneOf": [{"type": "object"}, _string()],
    "nullable": True,
}
SUBMISSION_FIELDS: dict[str, Schema] = {
    "audio_path": _string(description="A file under STT_ALLOWED_AUDIO_ROOTS (instead of `file`)"),
    "queue": _string(enum=["interactive", "bulk"]),
    "model": _string(description="A model name this deployment offers (STT_MODELS)"),
    "decoder": _string(enum=["greedy", "beam"]),
    "hotwords": _string(description="Comma-separated words to favour (beam decoder)"),
    "hotword_weight": {"type": "number", "minimum": 0, "maximum": 100},
    "language": _string(),
    "callback_url": _string(description="http(s) URL called when the job ends (webhooks)"),
    "callback_payload": _string(enum=["full", "thin"]),
}
# In a JSON body these accept null as "not given" (form fields cannot be null).
NULL_MEANS_ABSENT = {
    name: _nullable(SUBMISSION_FIELDS[name])
    for name in ("audio_path", "model", "hotwords", "language", "callback_url", "callback_payload")
}
JOB_SUBMISSION = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "file": _string(format="binary", description="MP3, WAV, M4A, OGG or FLAC"),
                "metadata": _string(description="A JSON object, as text (16 KiB at most)"),
                **SUBMISSION_FIELDS,
            },
        }
    },
    "application/json": {
        "schema": {
            "type": "object",
            "description": "null stands for an absent field where the field allows it",
            "properties": {"metadata": METADATA_IN, **SUBMISSION_FIELDS, **NULL_MEANS_ABSENT},
        }
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": _string()}}
LOCATION = {"Location": {"description": "The job's URL", "schema": _string()}}
JOB_ID = _path_id("job_id", "The job's id")


def _operation(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    return {"summary": summary, "responses": responses, **extra}


def _open(operation: Schema) -> Schema:
    """Reachable without a key even when keys are configured."""
    return {**operation, "security": []}


def _text(media: str, description: str) -> Schema:
    return {"description": description, "content": {media: {"schema": _string()}}}


PATHS: dict[str, Schema] = {
    "/healthz": {
        "get": _open(
            _operation(
                "Liveness", {"200": _json(_object({"status": _string(enum=["ok"])}), "Alive")}
            )
        )
    },
    "/readyz": {
        "get": _open(
            _operation(
                "Readiness: database, queue and a recent worker",
                {
                    "200": _json(_ref("Readiness"), "Ready"),
                    "503": _json(_ref("Readiness"), "Not ready"),
                },
            )
        )
    },
    "/metrics": {
        "get": _open(_operation("Prometheus metrics", {"200": _text("text/plain", "Metrics")}))
    },
    "/": {"get": _open(_operation("The web page", {"200": _text("text/html", "HTML")}))},
    "/web/config": {
        "get": _open(
            _operation(
                "Limits the web page shows, and whether it must ask for an API key",
                {
                    "200": _json(
                        _object(
                            {
                                "max_duration_s": {"type": "number"},
                                "max_upload_mb": {"type": "number"},
                                "formats": {"type": "array", "items": _string()},
                                "auth_required": {"type": "boolean"},
                            }
                        ),
                        "Limits and whether a key is needed",
                    )
                },
            )
        )
    },
    "/static/{filename}": {
        "get": _open(
            _operation(
                "The web page's static files",
                {
                    "200": {"description": "The file", "content": {"*/*": {"schema": {}}}},
                    "304": {"description": "Not modified"},
                    **_errors(404, keyed=False),
                },
                parameters=[_path_id("filename", "A file under api/static")],
            )
        )
    },
    "/openapi.json": {
        "get": _open(_operation("This document", {"200": _json({"type": "object"}, "OpenAPI 3")}))
    },
    "/v1/jobs": {
        "post": _operation(
            "Submit audio (upload `file` or a server `audio_path`)",
            {
                "200": _json(
                    _ref("Job"), "Replay of an Idempotency-Key: the earlier job", LOCATION
                ),
                "202": _json(_ref("Job"), "Accepted and queued", LOCATION),
                **_errors(400, 403, 404, 409, 413, 415, 422),
            },
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": _string(maxLength=128),
                    "description": "Same key and body: the same job, not a second one",
                }
            ],
            requestBody={"required": True, "content": JOB_SUBMISSION},
        ),
        "get": _operation(
            "List jobs, newest first (a key sees only its own)",
            {"200": _json(_ref("JobList"), "A page of jobs"), **_errors(400)},
            parameters=[
                _query("status", _string(enum=[s.value for s in JobStatus]), "Filter"),
                *PAGE,
            ],
        ),
    },
    "/v1/jobs/{job_id}": {
        "parameters": [JOB_ID],
        "get": _operation("Poll a job", {"200": _json(_ref("Job"), "The job"), **_errors(404)}),
        "delete": _operation(
            "Cancel a queued job, or delete a finished one and its files",
            {
                "200": _json(_ref("Job"), "Canceled"),
                "204": {"description": "Deleted"},
                **_errors(404, 409),
            },
        ),
    },
    "/v1/jobs/{job_id}/transcript": {
        "parameters": [JOB_ID],
        "get": _operation(
            "The transcript of a completed job",
            {
                "200": {
                    "description": "The transcript in the asked format",
                    "content": {
                        media.split(";")[0]: {"schema": {}} for media in MIMETYPES.values()
                    },
                },
                **_errors(400, 404, 409),
            },
            parameters=[_query("format", _string(enum=list(MIMETYPES)), "Default txt")],
        ),
    },
    "/v1/jobs/{job_id}/audio": {
        "parameters": [JOB_ID],
        "get": _operation(
            "The processed audio (16 kHz mono WAV), with Range support",
            {
                "200": {
                    "description": "WAV",
                    "content": {"audio/wav": {"schema": _string(format="binary")}},
                },
                "206": {
                    "description": "Part",
                    "content": {"audio/wav": {"schema": _string(format="binary")}},
                },
                "304": {"description": "Not modified"},
                **_errors(404, 409, 416),
            },
        ),
    },
    "/v1/jobs/{job_id}/deliveries": {
        "parameters": [JOB_ID],
        "get": _operation(
            "Webhook delivery attempts of the job",
            {
                "200": _json(
                    _object(
                        {
                            "job_id": _string(format="uuid"),
                            "deliveries": {"type": "array", "items": _ref("Delivery")},
                        }
                    ),
                    "Attempts",
                ),
                **_errors(404),
            },
        ),
        "post": _operation(
            "Send the job's webhook again now",
            {
                "202": _json(_object({"delivery": _ref("Delivery")}), "Due now"),
                **_errors(400, 404, 409),
            },
        ),
    },
    "/v1/batches": {
        "post": _operation(
            "Queue many server paths on the bulk queue",
            {
                "202": _json(_ref("Batch"), "Each item answered on its own (`results`)", LOCATION),
                **_errors(400),
            },
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["paths"],
                            "properties": {
                                "paths": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "description": "A server path; a non-string is "
                                        "rejected as an item, not the batch"
                                    },
                                },
                                "metadata": METADATA_IN,
                                "callback_url": _nullable(_string()),
                                "decoder": _string(enum=["greedy", "beam"]),
                            },
                        }
                    }
                },
            },
        )
    },
    "/v1/batches/{batch_id}": {
        "parameters": [_path_id("batch_id", "The batch's id")],
        "get": _operation(
            "A batch, its counts and a page of its jobs (oldest first)",
            {"200": _json(_ref("Batch"), "The batch"), **_errors(400, 404)},
            parameters=PAGE,
        ),
    },
    "/wav2vec2": {
        method: _operation(
            "The first version's route: submit and wait (STT_LEGACY_WAIT_S)",
            {
                "200": _json(_ref("LegacyAnswer"), "Transcribed"),
                **{
                    str(code): _json(_ref("LegacyError"), ERROR_TEXT[code])
                    for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503, 504)
                },
            },
            parameters=[
                _query("path", _string(), "Server path (else STT_DEFAULT_AUDIO)"),
                _query("audio_path", _string(), "Same as `path`"),
            ],
            **(
                {"requestBody": {"required": False, "content": JOB_SUBMISSION}}
                if method == "post"
                else {}
            ),
        )
        for method in ("get", "post")
    },
}

DOCUMENT: Schema = {
    "openapi": "3.0.3",
    "info": {
        "title": "vi-stt",
        "version": "1",
        "description": "Vietnamese speech-to-text jobs. Errors are always "
        '{"error": {"code", "message"}}; branch on `code`. When API keys are configured '
        "(STT_API_KEYS or `stt apikey create`), send one as `Authorization: Bearer <key>` or "
        "`X-API-Key`; with none configured the API is open.",
    },
    "paths": PATHS,
    "security": [{"bearer": []}, {"apiKey": []}, {}],
    "components": {
        "schemas": SCHEMAS,
        "responses": {
            f"E{code}": _json(_ref("Error"), text, RETRY_AFTER if code == 503 else None)
            for code, text in ERROR_TEXT.items()
        },
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    },
}


@bp.get("/openapi.json")
def openapi_document():  # noqa: ANN201
    return jsonify(DOCUMENT)
