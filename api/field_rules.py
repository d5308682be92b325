"""How each field a client sends is read: the rules the request models (api/request_models.py)
run before their typed check.

A rule takes the value as it arrived (form text, a query string, or any JSON value) and returns
what the handlers use, or raises SttError with the message clients have always had. The rules
are more lenient than pydantic's own coercion on purpose (a JSON 5 is the language "5", a form's
"1e1" is a weight), and they are what the API answered before its models existed, so they are
run as they are rather than rewritten as constraints.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationInfo

from shared.delivery.callbacks import PAYLOAD_MODES, accept_callback_url
from shared.errors import ErrorCode, SttError
from shared.jobs.routing import BASE_QUEUES, resolve_model
from shared.settings import Settings
from shared.speech.speakers.options import MAX_CHANNEL_NAME, MAX_SPEAKERS

MAX_METADATA_BYTES = 16 * 1024
MAX_NESTING = 32  # JSON levels in a request (metadata included)
DECODERS = ("greedy", "beam")
MAX_HOTWORDS = 100


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


def parse_json(text: str | bytes, what: str) -> Any:
    """json.loads, with a too-deep document answered 400 (it raises RecursionError)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{what} is not valid JSON") from exc


def _settings(info: ValidationInfo) -> Settings:
    """Rules that depend on the deployment read its settings from the validation context."""
    settings: Settings = (info.context or {})["settings"]
    return settings


def queue(raw: Any) -> str:
    return choice(raw, BASE_QUEUES, "queue")


def model(raw: Any, info: ValidationInfo) -> str:
    """The name of the model that will serve the job: the default when none is asked for, an
    unknown name refused (unknown_model). A JSON list or object is refused, not a 500."""
    if raw is not None and raw != "" and not isinstance(raw, str):
        raise SttError(ErrorCode.INVALID_REQUEST, "model must be a string")
    return resolve_model(_settings(info), raw or None).name


def metadata(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        raw = parse_json(raw, "metadata")
    if not isinstance(raw, dict):
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata must be a JSON object")
    check_text(raw)
    if len(json.dumps(raw)) > MAX_METADATA_BYTES:
        raise SttError(ErrorCode.INVALID_REQUEST, "metadata is larger than 16 KiB")
    return raw


def callback_url(raw: Any, info: ValidationInfo) -> str | None:
    """An http(s) URL that may be called: webhooks on, host public or allowed (SSRF)."""
    if raw is None or raw == "":
        return None
    url = raw if isinstance(raw, str) else ""  # false, 0, [] are mistakes, not "no callback"
    if not url.startswith(("http://", "https://")) or len(url) > 2048 or not url.isprintable():
        raise SttError(ErrorCode.INVALID_REQUEST, "callback_url must be an http(s) URL")
    accept_callback_url(url, _settings(info))
    return url


def callback_payload(raw: Any) -> str:
    """``full`` (default: the transcript rides in the webhook) or ``thin`` (the event only)."""
    return choice(raw or "full", PAYLOAD_MODES, "callback_payload")


def decoder(raw: Any) -> str:
    return choice(raw, DECODERS, "decoder")


def hotwords(raw: Any) -> list[str] | None:
    """A list, or comma-separated text; nothing given (or only empty words) is no hotwords."""
    if not raw:
        return None
    words = raw if isinstance(raw, list) else str(raw).split(",")
    return [str(w).strip() for w in words if str(w).strip()][:MAX_HOTWORDS]


def hotword_weight(raw: Any) -> float:
    return number(raw, "hotword_weight", 0, 100)


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def flag(name: str) -> Callable[[Any], bool | None]:
    """A switch sent as a JSON boolean or as form text ("true"/"false", "1"/"0"); absent is
    None, so only the switches a client set are stored on its job."""

    def read(raw: Any) -> bool | None:
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be true or false")

    return read


def language(raw: Any) -> str | None:
    return str(raw)[:8] if raw else None


def text_or_none(raw: Any) -> str | None:
    """A server path as the handlers use it: any value given, as text; nothing is None."""
    return str(raw) if raw else None


def paths(raw: Any, info: ValidationInfo) -> list[Any]:
    """A non-empty list of at most STT_BATCH_MAX_PATHS entries. An entry that is not text is
    refused later as an item, never the whole batch."""
    if not isinstance(raw, list) or not raw:
        raise SttError(ErrorCode.INVALID_REQUEST, "`paths` must be a non-empty JSON list")
    cap = _settings(info).batch_max_paths
    if len(raw) > cap:
        raise SttError(
            ErrorCode.BATCH_TOO_LARGE,
            f"{len(raw)} paths; at most {cap} per batch (STT_BATCH_MAX_PATHS): split the list,"
            " or use `stt backfill` on the server",
        )
    return raw


def page_limit(largest: int) -> Callable[[Any], int]:
    """A page size clamped to [1, largest]; only text that is no integer is refused."""

    def clamp(raw: Any) -> int:
        try:
            return max(1, min(int(raw), largest))
        except (TypeError, ValueError) as exc:
            raise SttError(ErrorCode.INVALID_REQUEST, "limit must be an integer") from exc

    return clamp


def as_sent(raw: Any) -> Any:
    """Kept unchanged: a later step (shared/) judges it, in the order it always has."""
    return raw


def choice(raw: Any, allowed: tuple[str, ...], name: str) -> str:
    value = str(raw)
    if value not in allowed:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be one of {', '.join(allowed)}")
    return value


def number(raw: Any, name: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be a number") from exc
    if not low <= value <= high:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{name} must be within [{low}, {high}]")
    return value


def search_text(raw: Any) -> str:
    """The words to find: required; lone surrogates refused like anywhere else."""
    if raw is None or raw == "":
        raise SttError(ErrorCode.INVALID_QUERY, "q (the words to find) is required")
    text = str(raw)
    _check_unicode(text)
    return text


def timestamp(raw: Any) -> datetime | None:
    """An ISO 8601 time; one without a zone is UTC, as every time the API writes."""
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{raw!r} is not an ISO 8601 time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def uuid_or_none(raw: Any) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise SttError(ErrorCode.INVALID_REQUEST, f"{raw!r} is not a UUID") from exc


def speaker_count(name: str) -> Callable[[Any], int | None]:
    """A whole number of speakers in 1..MAX_SPEAKERS (form text or JSON); absent is None."""

    def read(raw: Any) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            value = int(str(raw).strip()) if not isinstance(raw, bool) else None
        except ValueError:
            value = None
        if value is None or not 1 <= value <= MAX_SPEAKERS:
            raise SttError(
                ErrorCode.INVALID_SPEAKER_COUNT,
                f"{name} must be a whole number from 1 to {MAX_SPEAKERS}",
            )
        return value

    return read


def channel_names(raw: Any) -> list[str] | None:
    """Two names, one per channel in order ("agent,customer" or a JSON list of two)."""
    if raw is None or raw == "" or raw == []:
        return None
    names = raw if isinstance(raw, list) else str(raw).split(",")
    cleaned = [str(n).strip() for n in names]
    if (
        len(cleaned) != 2
        or not all(cleaned)
        or cleaned[0] == cleaned[1]
        or any(len(n) > MAX_CHANNEL_NAME or not n.isprintable() for n in cleaned)
    ):
        raise SttError(
            ErrorCode.INVALID_CHANNEL_NAMES,
            "channel_names must be two different names (comma-separated, each at most"
            f" {MAX_CHANNEL_NAME} printable characters), one per channel in order",
        )
    return cleaned
