"""Turn an HTTP request into a validated Submission, refusing at the door what can be known there.

Size, format (by its header bytes, not the name) and path are checked before anything is
queued; what only decoding can find (corrupt data, length, silence) fails the job later.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from flask import Request
from werkzeug.datastructures import FileStorage

from api.field_rules import callback_payload, check_text, parse_json
from api.request_models import JobRequest
from shared.apikeys import scoped_idempotency_key
from shared.errors import ErrorCode, SttError
from shared.jobs.paths import resolve_allowed
from shared.jobs.records import Submission, job_dir
from shared.jobs.routing import queue_for
from shared.settings import Settings
from shared.speech.audio import detect_format, sniff_format

HEAD_BYTES = 64
MAX_IDEMPOTENCY_KEY = 128


def request_fields(request: Request) -> dict[str, Any]:
    """Form fields, a JSON object body, then the query string (the legacy route sends those)."""
    fields: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = parse_json(request.get_data(cache=True), "the JSON body")
        if not isinstance(body, dict):
            raise SttError(ErrorCode.INVALID_REQUEST, "the JSON body must be an object")
        fields.update(body)
    fields.update(request.form.items())
    check_text(fields)
    return fields


def build_submission(
    request: Request,
    settings: Settings,
    fields: dict[str, Any],
    audio_path: str | None,
    extra_roots: tuple[Path, ...] = (),
    owner: str | None = None,
) -> Submission:
    """``owner``: the calling API key's name (None while the API is open); the job is its own.

    The fields are checked here, after the queue's room (api/jobs.py), and the header after
    them: the order decides which error a request with several mistakes gets."""
    job_id = uuid.uuid4()
    checked = JobRequest.model_validate(fields, context={"settings": settings})
    common: dict[str, Any] = {
        "job_id": job_id,
        "queue": queue_for(checked.queue, checked.model),
        "meta": checked.metadata,
        "callback_url": checked.callback_url,
        "options": checked.decoding_options(),
        "idempotency_key": scoped_idempotency_key(owner, _idempotency_key(request)),
        "api_key_id": owner,
    }
    upload = request.files.get("file")
    if upload is not None and upload.filename != "":
        return _from_upload(upload, settings, common)
    if audio_path:
        return _from_path(audio_path, [*settings.allowed_audio_roots, *extra_roots], common)
    raise SttError(ErrorCode.MISSING_AUDIO, "send an audio file as `file` or an `audio_path`")


def _idempotency_key(request: Request) -> str | None:
    """The header, bounded: the stored key (scoped by owner) must fit its 255-character column."""
    raw = request.headers.get("Idempotency-Key") or None
    if raw is not None and (len(raw) > MAX_IDEMPOTENCY_KEY or not raw.isprintable()):
        raise SttError(
            ErrorCode.INVALID_REQUEST,
            f"Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return raw


def _from_upload(upload: FileStorage, settings: Settings, common: dict[str, Any]) -> Submission:
    head = upload.stream.read(HEAD_BYTES)
    if not head:
        raise SttError(ErrorCode.EMPTY_AUDIO, "the uploaded file is empty")
    fmt = sniff_format(head)
    if fmt is None:
        raise SttError(
            ErrorCode.UNSUPPORTED_FORMAT,
            "unsupported audio format: send MP3, WAV, M4A, OGG or FLAC (checked by content)",
        )
    target = job_dir(settings.data_dir, common["job_id"]) / f"input.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(head)
    size = len(head)
    with target.open("wb") as out:
        out.write(head)
        while block := upload.stream.read(1 << 20):
            size += len(block)
            if size > settings.max_upload_bytes:
                out.close()
                target.unlink(missing_ok=True)
                raise SttError(
                    ErrorCode.UPLOAD_TOO_LARGE,
                    f"upload exceeds STT_MAX_UPLOAD_MB={settings.max_upload_mb:g}",
                )
            digest.update(block)
            out.write(block)
    name = _clean_filename(upload.filename or "upload")
    return Submission(
        source="upload", input_path=target, original_filename=name,
        sha256=digest.hexdigest(), input_format=fmt, **common,
    )


def _clean_filename(raw: str) -> str:
    """The client's file name is only shown back: control characters (PostgreSQL refuses NUL in
    text) and anything that is not valid Unicode are dropped."""
    name = Path(raw).name.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in name if ch.isprintable())[:512] or "upload"


def _from_path(raw: str, roots: list[Path], common: dict[str, Any]) -> Submission:
    path = resolve_allowed(str(raw), roots)
    fmt = detect_format(path)
    return Submission(
        source="path", input_path=path, original_filename=path.name,
        sha256=file_sha256(path), input_format=fmt, **common,
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def callback_payload_mode(fields: dict[str, Any]) -> str:
    """Checked on its own before the queue's room, as it always was; JobRequest reads it again."""
    return callback_payload(fields.get("callback_payload"))
