"""Turn an HTTP request into a validated Submission, refusing at the door what can be known there.

Size, format (by its header bytes, not the name) and path are checked before anything is
queued; what only decoding can find (corrupt data, length, silence) fails the job later.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from flask import Request
from werkzeug.datastructures import FileStorage

from shared.audio import detect_format, sniff_format
from shared.errors import ErrorCode, SttError
from shared.jobs import Submission, job_dir
from shared.paths import resolve_allowed
from shared.settings import Settings

HEAD_BYTES = 64
MAX_METADATA_BYTES = 16 * 1024
DECODERS = ("greedy", "beam")


def request_fields(request: Request) -> dict[str, Any]:
    """Form fields, a JSON object body, then the query string (the legacy route sends those)."""
    fields: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise SttError(ErrorCode.INVALID_REQUEST, "the JSON body must be an object")
        fields.update(body)
    fields.update(request.form.items())
    return fields


def build_submission(
    request: Request,
    settings: Settings,
    fields: dict[str, Any],
    audio_path: str | None,
    extra_roots: tuple[Path, ...] = (),
) -> Submission:
    job_id = uuid.uuid4()
    queue = _choice(fields.get("queue", "interactive"), ("interactive", "bulk"), "queue")
    common: dict[str, Any] = {
        "job_id": job_id,
        "queue": queue,
        "meta": _metadata(fields.get("metadata")),
        "callback_url": _callback_url(fields.get("callback_url")),
        "options": decoding_options(fields),
        "idempotency_key": request.headers.get("Idempotency-Key") or None,
    }
    upload = request.files.get("file")
    if upload is not None and upload.filename != "":
        return _from_upload(upload, settings, common)
    if audio_path:
        return _from_path(audio_path, [*settings.allowed_audio_roots, *extra_roots], common)
    raise SttError(ErrorCode.MISSING_AUDIO, "send an audio file as `file` or an `audio_path`")


def decoding_options(fields: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "decoder" in fields:
        options["decoder"] = _choice(fields["decoder"], DECODERS, "decoder")
    if fields.get("hotwords"):
        raw = fields["hotwords"]
        words = raw if isinstance(raw, list) else str(raw).split(",")
        options["hotwords"] = [str(w).strip() for w in words if str(w).strip()][:100]
    if "hotword_weight" in fields:
        options["hotword_weight"] = _number(fields["hotword_weight"], "hotword_weight", 0, 100)
    if fields.get("language"):
        options["language"] = str(fields["language"])[:8]
    return options


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
    name = Path(upload.filename or "upload").name[:512]
    return Submission(
        source="upload", input_path=target, original_filename=name,
        sha256=digest.hexdigest(), input_format=fmt, **common,
    )


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


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SttError(ErrorCode.INVALID_REQUEST, "metadata must be a JSON object") from exc
    if not isinstance(raw, dict):
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata must be a JSON object")
    if len(json.dumps(raw)) > MAX_METADATA_BYTES:
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata is larger than 16 KiB")
    return raw


def _callback_url(raw: Any) -> str | None:
    if not raw:
        return None
    url = str(raw)
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise SttError(ErrorCode.INVALID_REQUEST, "callback_url must be an http(s) URL")
    return url


def _choice(raw: Any, allowed: tuple[str, ...], name: str) -> str:
    value = str(raw)
    if value not in allowed:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be one of {', '.join(allowed)}")
    return value


def _number(raw: Any, name: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be a number") from exc
    if not low <= value <= high:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be within [{low}, {high}]")
    return value
