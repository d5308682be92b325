"""The first version's contract, kept for its callers: GET/POST /wav2vec2.

It now goes through the same queue as every other job and waits for the result (bounded by
STT_LEGACY_WAIT_S), answering the old shape {"status", "transcript", "path"}.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.jobs import submit_job
from api.request_models import LegacyQuery
from api.services import services
from api.submission import request_fields
from shared.errors import HTTP_STATUS, ErrorCode, SttError
from shared.jobs import records as job_store
from shared.store.tables import TERMINAL, Job, JobStatus

bp = Blueprint("legacy", __name__)
POLL_S = 0.2


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
    job, _ = submit_job(fields, audio_path, trusted)
    return _legacy_answer(_wait(job.id, settings.legacy_wait_s))


def _wait(job_id: uuid.UUID, timeout_s: float) -> Job:
    deadline = time.monotonic() + timeout_s
    while True:
        with services().sessions() as session:
            job = job_store.get_job(session, job_id)
        if job.status in TERMINAL or time.monotonic() >= deadline:
            return job
        time.sleep(POLL_S)


def _legacy_answer(job: Job) -> Response | tuple[Response, int]:
    body: dict[str, Any]
    if job.status == JobStatus.COMPLETED:
        # The first version's callers parse the spoken form (lowercase, no punctuation, numbers
        # as words): they get the recogniser's own words, not the written transcript.
        spoken = (job.result or {}).get("spoken_text", job.transcript)
        body = {"status": "success", "transcript": spoken, "path": job.processed_path}
        return jsonify(body)
    if job.status in TERMINAL:
        code = ErrorCode(job.error_code or ErrorCode.TRANSCRIPTION_FAILED)
        message = job.error_message or f"job {job.status}"
    else:
        code, message = ErrorCode.LEGACY_TIMEOUT, f"job {job.id} is still {job.status}; poll it"
    body = {
        "status": "error",
        "transcript": "",
        "path": job.processed_path,
        "job_id": str(job.id),
        "error": {"code": code.value, "message": message},
    }
    return jsonify(body), HTTP_STATUS.get(code, 500)
