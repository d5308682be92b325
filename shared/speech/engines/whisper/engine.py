"""Whisper engine on faster-whisper (CTranslate2): the permissively licensed path.

Whisper is an encoder-decoder that conditions each 30 s window on the text before it, so it is
at its best when it sees a whole recording: the product issue measured that feeding it fixed
25 s pieces costs 8-14 WER points and turning off ``condition_on_previous_text`` up to 12. The
pipeline should therefore call :meth:`WhisperEngine.transcribe_file_audio` with the full file
(``prefers_whole_file`` says so); ``transcribe_batch`` exists for the Engine protocol and
short inputs. Against Whisper's known failure modes we keep silero VAD on (no text invented
over silence or music), the no-speech threshold, and temperature fallback driven by the
compression-ratio and log-prob thresholds (no repetition loops).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import ErrorCode, SttError
from shared.speech.engines.base import (
    ChunkResult,
    DecodeOptions,
    EngineInfo,
    Float32Array,
    Segment,
    Word,
)

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_LICENSE_LINE = re.compile(r"^license:\s*['\"]?([\w.+-]+)", re.MULTILINE)


class WhisperEngine:
    """One loaded faster-whisper model; construct once per worker process and reuse."""

    prefers_whole_file: bool = True
    writes_text: bool = True  # digits, punctuation and capitals already: never formatted again

    def __init__(
        self,
        model: str,
        device: str = "auto",
        compute_type: str = "auto",
        license: str | None = None,
        fallback: bool = False,
        beam_size: int = 5,
        note: str | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        self.device = _resolve_device(device)
        self.compute_type = _resolve_compute_type(compute_type, self.device)
        how = "set" if compute_type != "auto" else "default"
        self.beam_size = beam_size
        looks_like_path = Path(model).is_absolute() or model.startswith((".", "~"))
        try:
            if looks_like_path and not Path(model).expanduser().is_dir():
                raise FileNotFoundError(f"no such model directory: {model}")
            kind, index = ctranslate2_device(self.device)
            self._model = WhisperModel(
                str(Path(model).expanduser()) if looks_like_path else model,
                device=kind,
                device_index=index,
                compute_type=self.compute_type,
            )
        except Exception as exc:  # noqa: BLE001 - any load failure is the same operator problem
            raise SttError(
                ErrorCode.MODEL_LOAD_FAILED,
                f"could not load Whisper model {model!r} on {self.device} "
                f"({self.compute_type}): {exc}. Set STT_MODEL to a local CTranslate2 Whisper "
                "model directory (or a model name the Hub can serve), or STT_ENGINE=wav2vec2.",
            ) from exc
        self.info = EngineInfo(
            engine="whisper",
            model=model,
            device=self.device,
            license=license or _license_from_dir(model),
            fallback=fallback,
            note=note,
            compute=f"{self.device}: ctranslate2 {self.compute_type} ({how})",
        )

    def transcribe_batch(
        self, chunks: list[Float32Array], options: DecodeOptions
    ) -> list[ChunkResult]:
        """Each chunk decoded on its own (no cross-chunk context); prefer whole-file input."""
        return [self.transcribe_file_audio(chunk, options) for chunk in chunks]

    def transcribe_file_audio(self, audio: Float32Array, options: DecodeOptions) -> ChunkResult:
        """Whole recording through faster-whisper's sequential long-form decoding."""
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return ChunkResult(text="")
        try:
            segments, _info = self._model.transcribe(samples, **self._decode_kwargs(options))
            return _to_result(segments)
        except Exception as exc:  # noqa: BLE001 - surfaced to the job with a stable code
            raise SttError(
                ErrorCode.TRANSCRIPTION_FAILED, f"Whisper decoding failed: {exc}"
            ) from exc

    def _decode_kwargs(self, options: DecodeOptions) -> dict[str, Any]:
        language = (options.language or "").strip().lower()
        return {
            "language": None if language in ("", "auto") else language,
            "task": "transcribe",
            "beam_size": self.beam_size,
            "best_of": 5,
            "temperature": list(TEMPERATURES),
            "compression_ratio_threshold": 2.4,
            "log_prob_threshold": -1.0,
            "no_speech_threshold": 0.6,
            "condition_on_previous_text": True,
            "word_timestamps": True,
            "vad_filter": True,
            "hotwords": " ".join(options.hotwords) or None,
        }


def _to_result(segments: Iterable[Any]) -> ChunkResult:
    """Consume faster-whisper's lazy segments into NFC text, segments and scored words."""
    out: list[Segment] = []
    for seg in segments:
        text = _clean(seg.text)
        if not text:
            continue
        words = [
            Word(_clean(w.word), float(w.start), float(w.end), float(w.probability))
            for w in (seg.words or [])
            if _clean(w.word)
        ]
        out.append(Segment(text, float(seg.start), float(seg.end), words))
    return ChunkResult(text=" ".join(s.text for s in out), segments=out)


def _clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # noqa: BLE001 - no CUDA runtime means CPU
        return "cpu"


def ctranslate2_device(device: str) -> tuple[str, int]:
    """``cuda:N`` as CTranslate2 takes it: the kind and a separate index.

    CTranslate2 refuses ``cuda:1`` outright ("unsupported device"), while the rest of the
    service (and an operator running one worker per GPU) names a GPU that way.
    """
    kind, _, index = device.partition(":")
    return kind, int(index) if index.isdigit() else 0


def _resolve_compute_type(compute_type: str, device: str) -> str:
    """int8 on CPU (the configuration the team measured), float16 on GPU."""
    if compute_type != "auto":
        return compute_type
    return "float16" if device.startswith("cuda") else "int8"


def _license_from_dir(model: str) -> str | None:
    """A model card's ``license:`` front-matter line, when the model is a local directory."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    for name in ("README.md", "LICENSE.md"):
        card = folder / name
        try:
            match = _LICENSE_LINE.search(card.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if match:
            return match.group(1).lower()
    return None
