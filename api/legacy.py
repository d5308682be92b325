"""The first version's contract, kept for its callers: GET/POST /wav2vec2.

It now goes through the same queue as every other job and waits for the result (bounded by
STT_LEGACY_WAIT_S), answering the old shape {"status", "transcript", "path"}.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from api.job_wait import outcome_error, wait_for_job
from api.jobs import submit_job
from api.request_models import LegacyQuery
from api.services import services
from api.submission import request_fields
from shared.errors import ErrorCode, SttError
from shared.store.tables import Job

bp = Blueprint("legacy", __name__)


@bp.route("/wav2vec2", methods=["GET", "POST"])
def wav2vec2() -> Response | tuple[Response, int]:
    settings = services().settings
    fields = request_fields(request)
    query = LegacyQuery.model_validate(fields)
    audio_path = query.path or query.audio_path
    trusted: tuple[Path, ...] = ()
    if not audio_path and "file" not in request.files:
        if settings.default_audio is None:
            raise SttError(ErrorCode.MISSING_AUDIO, "no audio path given and no STT_DEFAULT_AUDIO")
        # The operator's own fallback file is trusted even outside the allowed roots.
        audio_path = str(settings.default_audio)
        trusted = (settings.default_audio.resolve(),)
    with services().waits.held():
        job, _ = submit_job(fields, audio_path, trusted)
        return _legacy_answer(wait_for_job(job.id, settings.legacy_wait_s))


def _legacy_answer(job: Job) -> Response | tuple[Response, int]:
    error = outcome_error(job, ErrorCode.LEGACY_TIMEOUT)
    if error is None:
        # The first version's callers parse the spoken form (lowercase, no punctuation, numbers
        # as words): they get the recogniser's own words, not the written transcript.
        spoken = (job.result or {}).get("spoken_text", job.transcript)
        answer = {"status": "success", "transcript": spoken, "path": job.processed_path}
        return jsonify(answer)
    body = {
        "status": "error",
        "transcript": "",
        "path": job.processed_path,
        "job_id": str(job.id),
        **error.to_dict(),
    }
    return jsonify(body), error.http_status
