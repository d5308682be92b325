"""One JSON error shape for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError as DatabaseError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from api.services import services
from shared.errors import ErrorCode, RetryLater, SttError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.UPLOAD_TOO_LARGE,
}


def error_response(error: SttError) -> tuple[Response, int]:
    return jsonify(error.to_dict()), error.http_status


def _unavailable(code: ErrorCode, what: str, error: Exception) -> tuple[Response, int]:
    """A dependency is down: 503 with Retry-After, so clients back off instead of failing."""
    log.warning("%s unavailable: %s", what, error)
    response, status = error_response(SttError(code, f"{what} is unavailable; retry shortly"))
    response.headers["Retry-After"] = "5"
    return response, status


def register(app: Flask) -> None:
    @app.errorhandler(SttError)
    def _stt(error: SttError) -> tuple[Response, int]:
        response, status = error_response(error)
        if isinstance(error, RetryLater):
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response, status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge) -> tuple[Response, int]:
        limit = services().settings.max_upload_mb
        return error_response(
            SttError(ErrorCode.UPLOAD_TOO_LARGE, f"upload exceeds STT_MAX_UPLOAD_MB={limit:g}")
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[Response, int]:
        code = _HTTP_CODES.get(error.code or 500, ErrorCode.INVALID_REQUEST)
        response = jsonify({"error": {"code": code.value, "message": error.description}})
        return response, error.code or 400

    @app.errorhandler(BrokerError)
    def _broker(error: BrokerError) -> tuple[Response, int]:
        return _unavailable(ErrorCode.BROKER_UNAVAILABLE, "the job queue", error)

    @app.errorhandler(DatabaseError)
    def _database(error: DatabaseError) -> tuple[Response, int]:
        return _unavailable(ErrorCode.DATABASE_UNAVAILABLE, "the database", error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return error_response(SttError(ErrorCode.INTERNAL_ERROR, "internal error"))
