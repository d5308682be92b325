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

from api.services import services
from shared.apikeys import scoped_idempotency_key
from shared.delivery.callbacks import PAYLOAD_MODES, accept_callback_url
from shared.errors import ErrorCode, SttError
from shared.jobs.paths import resolve_allowed
from shared.jobs.records import Submission, job_dir
from shared.jobs.routing import BASE_QUEUES, queue_for, resolve_model
from shared.settings import Settings
from shared.speech.audio import detect_format, sniff_format

HEAD_BYTES = 64
MAX_METADATA_BYTES = 16 * 1024
MAX_IDEMPOTENCY_KEY = 128
MAX_NESTING = 32  # JSON levels in a request (metadata included)
DECODERS = ("greedy", "beam")


def request_fields(request: Request) -> dict[str, Any]:
    """Form fields, a JSON object body, then the query string (the legacy route sends those)."""
    fields: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = _parse_json(request.get_data(cache=True), "the JSON body")
        if not isinstance(body, dict):
            raise SttError(ErrorCode.INVALID_REQUEST, "the JSON body must be an object")
        fields.update(body)
    fields.update(request.form.items())
    check_text(fields)
    return fields


def check_text(value: Any) -> None:
    """Refuse what would otherwise come back as a 500: lone surrogates (a JSON "\\ud800"
    escape), which no database stores and no answer can encode, and nesting deep enough to
    exhaust the stack of whatever serialises it next. Iterative, so depth itself is safe."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_NESTING:
            raise SttError(ErrorCode.INVALID_REQUEST, f"JSON nested over {MAX_NESTING} levels")
        if isinstance(item, str):
            _check_unicode(item)
        elif isinstance(item, dict):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SttError(
            ErrorCode.INVALID_REQUEST, "the request contains invalid Unicode (lone surrogate)"
        ) from exc


def _parse_json(text: str | bytes, what: str) -> Any:
    """json.loads, with a too-deep document answered 400 (it raises RecursionError)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{what} is not valid JSON") from exc


def build_submission(
    request: Request,
    settings: Settings,
    fields: dict[str, Any],
    audio_path: str | None,
    extra_roots: tuple[Path, ...] = (),
    owner: str | None = None,
) -> Submission:
    """``owner``: the calling API key's name (None while the API is open); the job is its own."""
    job_id = uuid.uuid4()
    base = _choice(fields.get("queue", "interactive"), BASE_QUEUES, "queue")
    queue = queue_for(base, resolve_model(settings, _model_name(fields.get("model"))).name)
    common: dict[str, Any] = {
        "job_id": job_id,
        "queue": queue,
        "meta": _metadata(fields.get("metadata")),
        "callback_url": _callback_url(fields.get("callback_url"), settings),
        "options": decoding_options(fields),
        "idempotency_key": scoped_idempotency_key(owner, _idempotency_key(request)),
        "api_key_id": owner,
    }
    upload = request.files.get("file")
    if upload is not None and upload.filename != "":
        return _from_upload(upload, settings, common)
    if audio_path:
        return _from_path(audio_path, [*settings.allowed_audio_roots, *extra_roots], common)
    raise SttError(ErrorCode.MISSING_AUDIO, "send an audio file as `file` or an `audio_path`")


def _model_name(raw: Any) -> str | None:
    """A model name, or None for the default; a JSON list or object is refused, not a 500."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise SttError(ErrorCode.INVALID_REQUEST, "model must be a string")
    return raw


def _idempotency_key(request: Request) -> str | None:
    """The header, bounded: the stored key (scoped by owner) must fit its 255-character column."""
    raw = request.headers.get("Idempotency-Key") or None
    if raw is not None and (len(raw) > MAX_IDEMPOTENCY_KEY or not raw.isprintable()):
        raise SttError(
            ErrorCode.INVALID_REQUEST,
            f"Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    return raw


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


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        raw = _parse_json(raw, "metadata")
    if not isinstance(raw, dict):
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata must be a JSON object")
    check_text(raw)
    if len(json.dumps(raw)) > MAX_METADATA_BYTES:
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata is larger than 16 KiB")
    return raw


def _callback_url(raw: Any, settings: Settings | None = None) -> str | None:
    """An http(s) URL that may be called: webhooks on, host public or allowed (SSRF)."""
    if raw is None or raw == "":
        return None
    url = raw if isinstance(raw, str) else ""  # false, 0, [] are mistakes, not "no callback"
    if not url.startswith(("http://", "https://")) or len(url) > 2048 or not url.isprintable():
        raise SttError(ErrorCode.INVALID_REQUEST, "callback_url must be an http(s) URL")
    if settings is None:
        settings = services().settings
    accept_callback_url(url, settings)
    return url


def callback_payload_mode(fields: dict[str, Any]) -> str:
    """``full`` (default: the transcript rides in the webhook) or ``thin`` (the event only)."""
    return _choice(fields.get("callback_payload") or "full", PAYLOAD_MODES, "callback_payload")


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
