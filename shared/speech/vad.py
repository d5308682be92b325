"""Speech detection with silero-vad, loaded once per process from the model inside the package.

The chunker needs to know where the pauses are so it can cut long recordings between words.
silero-vad ships its weights in the wheel, so nothing is downloaded. The preferred backend is
the batched ("sequence") ONNX model: it runs a whole window in a few ONNX calls on one
onnxruntime thread (about 0.1 s per minute of audio on a 2-core CPU) and never touches torch's
thread pool, which belongs to the ASR engine. It is run here straight from the wheel's file,
without importing the ``silero_vad`` package: that package imports torch, a second of start-up
that the ONNX Runtime engines otherwise never pay. The TorchScript model is the fallback for
installs without onnxruntime or an older silero-vad; it runs with one torch thread and gives the
thread count back afterwards.

Importing ``silero_vad`` calls ``torch.set_num_threads(1)`` as a side effect; that would silently
slow the engine down, so that import happens here, once, with the thread count restored.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.silero_spans import SpanRule, spans_from_probs

_lock = threading.Lock()
SEQUENCE_MODEL = "silero_vad_16k_sequence.onnx"


def sequence_model_path() -> Path:
    """The wheel's sequence model, found without running the package's torch-importing init."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("silero-vad is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / SEQUENCE_MODEL
    if not path.is_file():
        raise ImportError(f"this silero-vad has no {SEQUENCE_MODEL}")
    return path


class SileroSequence:
    """silero's sequence model in ONNX Runtime: one call per 512 frames (16 s), LSTM state
    carried between calls, each frame prefixed with the last 64 samples of the one before."""

    FRAME, CONTEXT, BLOCK = 512, 64, 512

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def probabilities(self, audio: Float32Array) -> Float32Array:
        return self.stream_probabilities([audio])

    def stream_probabilities(self, blocks: Iterable[Float32Array]) -> Float32Array:
        """One speech probability per frame of the blocks taken as one recording: the calls
        and their inputs are those of the whole recording at once (same numbers), but only
        one call's audio is held, not the recording and a padded copy of it."""
        group = self.FRAME * self.BLOCK
        state = [np.zeros((1, 1, 128), dtype=np.float32) for _ in range(2)]
        held = np.zeros(self.CONTEXT, dtype=np.float32)  # the context, then undecided samples
        out: list[Float32Array] = []
        for block in blocks:
            held = np.concatenate([held, np.asarray(block, dtype=np.float32).reshape(-1)])
            while held.size - self.CONTEXT >= group:
                out.append(self._run(held[: self.CONTEXT + group], self.BLOCK, state))
                held = held[group:]
        frames = -(-(held.size - self.CONTEXT) // self.FRAME)
        if frames:
            last = np.zeros(self.CONTEXT + frames * self.FRAME, dtype=np.float32)
            last[: held.size] = held
            out.append(self._run(last, frames, state))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _run(self, padded: Float32Array, count: int, state: list[Float32Array]) -> Float32Array:
        """``count`` frames of ``padded`` (their context first), the LSTM state carried on."""
        at = np.arange(count)[:, None] * self.FRAME + np.arange(self.FRAME + self.CONTEXT)
        probs, state[0], state[1] = self.session.run(
            ["speech_probs", "hn", "cn"], {"input": padded[at], "h": state[0], "c": state[1]}
        )
        return np.asarray(probs, dtype=np.float32).reshape(-1)


def _import_silero() -> Any:
    """Import silero_vad without letting it change torch's global thread count."""
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    return silero_vad


class SpeechDetector:
    """Finds speech spans in 16 kHz mono float32 audio; one instance per process is enough.

    ``threshold`` is silero's speech probability cut-off; ``min_silence_ms`` is the shortest
    pause that separates two spans (shorter pauses are not cut points); ``speech_pad_ms`` widens
    each span so word edges (soft consonants, trailing tones) stay inside it.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_silence_ms: int = 100,
        speech_pad_ms: int = 30,
        min_speech_ms: int = 250,
        prefer_onnx: bool = True,
    ) -> None:
        self.threshold = threshold
        self.min_silence_ms = min_silence_ms
        self.speech_pad_ms = speech_pad_ms
        self.min_speech_ms = min_speech_ms
        self.backend, self._model, self._timestamps = self._load(prefer_onnx)

    @staticmethod
    def _load(prefer_onnx: bool) -> tuple[str, Any, Callable[..., list[dict[str, int]]] | None]:
        with _lock:
            if prefer_onnx:
                try:
                    return "onnx-sequence", SileroSequence(sequence_model_path()), None
                except (ImportError, OSError):
                    pass  # no onnxruntime or an older silero-vad: use TorchScript below
            import torch

            silero = _import_silero()
            threads = torch.get_num_threads()
            try:
                model = silero.load_silero_vad()
            finally:
                torch.set_num_threads(threads)
            return "jit", model, silero.get_speech_timestamps

    def speech_spans(self, audio: Float32Array, offset_s: float = 0.0) -> list[tuple[float, float]]:
        """Return ``(start_s, end_s)`` speech spans, shifted by ``offset_s`` to global time.

        Each call is independent (model state is reset), so callers should start windows in
        silence or accept that the first ~30 ms of a window may be detected late.
        """
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        if samples.size < 512:  # shorter than one silero frame: nothing to decide on
            return []
        with _lock:  # the model objects carry state between frames: one caller at a time
            if self._timestamps is not None:  # TorchScript
                stamps = [(s["start"], s["end"]) for s in self._run_jit(samples)]
            else:
                stamps = spans_from_probs(
                    self._model.probabilities(samples), samples.size, self.rule
                )
        return [(offset_s + s / SAMPLE_RATE, offset_s + e / SAMPLE_RATE) for s, e in stamps]

    def stream_spans(self, blocks: Iterable[Float32Array]) -> list[tuple[float, float]]:
        """``speech_spans`` of a recording given as consecutive blocks, without holding it
        whole (with the ONNX model; TorchScript silero needs the whole array)."""
        if self._timestamps is not None:
            return self.speech_spans(np.concatenate([np.asarray(b).reshape(-1) for b in blocks]))
        length = 0

        def counted() -> Iterator[Float32Array]:
            nonlocal length
            for block in blocks:
                length += len(block)
                yield block

        with _lock:
            probs = self._model.stream_probabilities(counted())
        if length < 512:
            return []
        stamps = spans_from_probs(probs, length, self.rule)
        return [(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in stamps]

    @property
    def rule(self) -> SpanRule:
        return SpanRule(self.threshold, self.min_speech_ms, self.min_silence_ms, self.speech_pad_ms)

    def _run_jit(self, samples: Float32Array) -> list[dict[str, int]]:
        """Run TorchScript silero on one thread (it is a tiny model), then restore the pool."""
        import torch

        assert self._timestamps is not None
        rule = self.rule
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                return self._timestamps(
                    torch.from_numpy(samples),
                    self._model,
                    threshold=rule.threshold,
                    sampling_rate=SAMPLE_RATE,
                    min_speech_duration_ms=rule.min_speech_ms,
                    min_silence_duration_ms=rule.min_silence_ms,
                    speech_pad_ms=rule.speech_pad_ms,
                )
        finally:
            torch.set_num_threads(threads)


_shared: SpeechDetector | None = None


def default_detector() -> SpeechDetector:
    """The process-wide detector with default parameters, loaded on first use."""
    global _shared
    if _shared is None:
        _shared = SpeechDetector()
    return _shared
