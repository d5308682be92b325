"""Errors of /v1/audio/transcriptions and /v1/models in OpenAI's shape, so OpenAI's clients
raise their usual exceptions (BadRequestError, AuthenticationError, NotFoundError, ...) carrying
our message.

Every error of these routes, wherever it was raised (the API key check before it, the upload
limit, the database, the route itself), is first answered in the service's own shape by the
app's handlers; an after-request hook of the app then rewrites it, so the two cannot disagree
on which status a failure gets. The hook is the app's, not the blueprints', and goes by path:
a request the router cannot match (a 405, a model name it cannot route) reaches no blueprint.
OpenAI answers 400 for a file it cannot use, where the service says 415 or 422. Our stable
code rides in ``code`` (OpenAI's ``invalid_api_key`` for a bad key). An error naming a job
says ``x-should-retry: false``: the job exists and goes on, and a client retry would submit a
second one.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, request

from shared.errors import ErrorCode

OPENAI_STATUS = {415: 400, 422: 400}
FILE_CODES = frozenset(
    {
        ErrorCode.MISSING_AUDIO,
        ErrorCode.UNSUPPORTED_FORMAT,
        ErrorCode.EMPTY_AUDIO,
        ErrorCode.UNDECODABLE_AUDIO,
        ErrorCode.UPLOAD_TOO_LARGE,
        ErrorCode.AUDIO_TOO_LONG,
        ErrorCode.SILENT_AUDIO,
    }
)
FIELDS = (
    "response_format",
    "temperature",
    "stream",
    "timestamp_granularities[]",
    "known_speaker_names[]",
    "known_speaker_references[]",
)
PREFIXES = ("/v1/audio/", "/v1/models/")


def register(app: Flask) -> None:
    app.after_request(_on_openai_paths)


def is_openai_path(path: str) -> bool:
    return path.startswith(PREFIXES) or path == "/v1/models"


def _on_openai_paths(response: Response) -> Response:
    return to_openai_shape(response) if is_openai_path(request.path) else response


def to_openai_shape(response: Response) -> Response:
    """An answer in the service's error shape, rewritten; any other answer as it is."""
    body = response.get_json(silent=True) if response.status_code >= 400 else None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or "type" in error:
        return response
    shaped = openai_error(response.status_code, error)
    response.set_data(current_app.json.dumps({"error": shaped}))
    response.status_code = OPENAI_STATUS.get(response.status_code, response.status_code)
    if "job_id" in shaped:
        response.headers["x-should-retry"] = "false"
    return response


def openai_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")
    shaped: dict[str, Any] = {
        "message": message,
        "type": "server_error" if status >= 500 else "invalid_request_error",
        "param": _param(code, message),
        "code": "invalid_api_key" if code == ErrorCode.UNAUTHORIZED else code or None,
    }
    if "job_id" in error:
        shaped["job_id"] = error["job_id"]
    return shaped


def _param(code: str, message: str) -> str | None:
    """The field at fault: the file for what is wrong with the audio; a field whose rule
    refused it (its messages start with the field's name)."""
    if code in FILE_CODES:
        return "file"
    if code == ErrorCode.MODEL_NOT_FOUND:
        return "model"
    if code == ErrorCode.INVALID_REQUEST:
        return next((name for name in FIELDS if message.startswith(name)), None)
    return None
