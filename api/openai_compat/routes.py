"""POST /v1/audio/transcriptions: OpenAI's transcription call, answered from an ordinary job.

The upload becomes an interactive job through the same door as POST /v1/jobs (checks, queue
room, the jobs table, the broker), so it is counted, limited, recorded and survives a worker
crash like any other; only the caller's request waits for it, up to STT_OPENAI_WAIT_S.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.job_wait import outcome_error, wait_for_job
from api.jobs import submit_job
from api.openai_compat.answers import transcription_answer
from api.openai_compat.form import GRANULARITIES_FIELD, read_form
from api.services import services
from api.submission import request_fields
from shared.errors import ErrorCode, SttError

bp = Blueprint("openai", __name__, url_prefix="/v1/audio")
JOB_ID_HEADER = "X-Job-Id"


@bp.post("/transcriptions")
def create_transcription() -> Response:
    settings = services().settings
    listed = [
        *request.form.getlist(GRANULARITIES_FIELD),
        *request.form.getlist("timestamp_granularities"),
    ]
    form = read_form(request_fields(request), listed, settings)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise SttError(ErrorCode.MISSING_AUDIO, "send the audio as the multipart file `file`")
    with services().waits.held():
        job, _ = submit_job(form.job_fields(), None)
        job = wait_for_job(job.id, settings.openai_wait_limit_s)
    error = outcome_error(job, ErrorCode.WAIT_TIMEOUT)
    if error is None:
        answer = transcription_answer(job, form.response_format, form.timestamp_granularities)
    else:
        body = error.to_dict()
        body["error"]["job_id"] = str(job.id)
        answer = jsonify(body)
        answer.status_code = error.http_status
    answer.headers[JOB_ID_HEADER] = str(job.id)  # the job behind the answer, in /v1/jobs
    return answer
