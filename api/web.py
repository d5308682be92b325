"""The browser page at ``/`` (plain files in api/static, no build step) and what it needs.

The page talks to the same public API as any client (/v1/jobs, /readyz); only two routes are
added for it: its settings (limits to show, whether an API key is needed) and the job's processed
audio, so a click on a transcript line can play from there. A strict Content-Security-Policy
keeps every byte the page loads on this service: no CDN, no third-party font.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, jsonify, send_file, send_from_directory

from api.services import services
from shared.apikeys import keys_configured
from shared.errors import ErrorCode, SttError
from shared.jobs import records as job_store
from shared.store.tables import TERMINAL

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__)
STATIC = Path(__file__).resolve().parent / "static"
UPLOAD_FORMATS = ("mp3", "wav", "m4a", "ogg")
CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        # blob: only for media: with API keys on, the page fetches the audio with its key and
        # plays it from an object URL, since an <audio src> cannot send an Authorization header.
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@bp.get("/")
def index() -> Response:
    response = send_from_directory(STATIC, "index.html", max_age=0)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/web/config")
def web_config() -> Response:
    """The limits the page shows next to the file picker, and whether it must ask for a key.

    An open route (api/auth.py), so the page can learn that it needs a key before it has one.
    """
    svc = services()
    settings = svc.settings
    with svc.sessions() as session:
        auth_required = keys_configured(settings.api_keys, session)
    return jsonify(
        {
            "max_duration_s": settings.max_duration_s,
            "max_upload_mb": settings.max_upload_mb,
            "formats": list(UPLOAD_FORMATS),
            "auth_required": auth_required,
        }
    )


@bp.get("/v1/jobs/<job_id>/audio")
def job_audio(job_id: str) -> Response:
    """The job's processed WAV (16 kHz mono), with Range support so players can seek."""
    svc = services()
    with svc.sessions() as session:
        job = job_store.get_job(session, job_id)
    if job.status not in TERMINAL:
        raise SttError(ErrorCode.JOB_NOT_FINISHED, f"the job is {job.status}; audio comes after")
    # Built from our own data folder rather than trusting a stored path.
    wav = job_store.job_dir(svc.settings.data_dir, job.id) / "processed.wav"
    if not wav.is_file():
        raise SttError(ErrorCode.NOT_FOUND, "this job has no processed audio")
    log.debug("serving processed audio %s", wav)
    return send_file(wav, mimetype="audio/wav", conditional=True, download_name=f"{job.id}.wav")
