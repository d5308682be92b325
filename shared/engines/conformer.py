"""Streaming Conformer CTC engine: an ONNX graph driven by our own features, loop and decoder.

The model (the one inside the ``viet-asr`` wheel, or a user's own export of the same streaming
signature) is a directory holding ``model.onnx`` and ``units.txt`` (``token id`` per line,
``▁`` starts a word). ONNX Runtime runs it, on CUDA when ``onnxruntime-gpu`` sees a GPU.
Chunks of one file (and on a GPU, of several jobs) are decoded as parallel streams.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from shared.ctc import (
    CtcDecoding,
    CtcVocab,
    decode,
    get_decoder,
    pyctcdecode_labels,
)
from shared.device import DeviceConfigError, cpu_threads
from shared.engines.base import ChunkResult, DecodeOptions, EngineInfo, Segment, Word
from shared.engines.conformer_features import log_mel_from_float
from shared.engines.conformer_streams import LAYOUTS, Layout, run_streams
from shared.errors import ErrorCode, SttError

log = logging.getLogger(__name__)
INPUTS = ("chunk", "offset", "att_cache", "cnn_cache")
OUTPUTS = ("output", "r_att_cache", "r_cnn_cache")
WORD_PREFIX = "\u2581"
# Tokens come out as one-frame spikes some 0.27 s (median) after speech starts (measured on the
# shared clips against speech onsets); word times are moved back by this much.
EMISSION_DELAY_S = 0.27
_UNIT_LINE = re.compile(r"(\S+) (\d+)")
_OPT_LEVELS = ("disable", "basic", "extended", "all")
CPU_BATCH = 8
CUDA_BATCH = 32


def read_units(path: Path, size: int) -> CtcVocab:
    """The first ``size`` units (the graph's output columns) as a BPE CTC vocabulary."""
    tokens: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        match = _UNIT_LINE.fullmatch(line.strip())
        if match is None or int(match.group(2)) != number:
            raise ValueError(f"{path}: line {number + 1} is not '<token> {number}'")
        tokens.append(match.group(1))
    if len(tokens) < size:
        raise ValueError(f"{path} lists {len(tokens)} units; the graph emits {size}")
    tokens = tokens[:size]
    special = {i for i, t in enumerate(tokens) if t.startswith("<") and t.endswith(">")}
    blank = tokens.index("<blank>") if "<blank>" in tokens else 0
    return CtcVocab(tuple(tokens), blank, None, frozenset(special - {blank}), WORD_PREFIX)


def onnx_providers(device: str, available: list[str]) -> tuple[list[object], str]:
    """Execution providers for a ``STT_DEVICE`` value, and the device name to report.

    Like the torch engines, an explicit ``cuda`` never falls back to the CPU silently.
    """
    value = device.strip().lower()
    has_cuda = "CUDAExecutionProvider" in available
    if value == "cpu" or (value == "auto" and not has_cuda):
        return ["CPUExecutionProvider"], "cpu"
    match = re.fullmatch(r"auto|cuda(?::(\d+))?", value)
    if match is None:
        raise DeviceConfigError(
            f"unknown device {device!r}: use STT_DEVICE=auto, cpu, cuda or cuda:N"
        )
    if not has_cuda:
        raise DeviceConfigError(
            f"device {device!r} requested but ONNX Runtime has no CUDA provider here "
            "(install onnxruntime-gpu, or set STT_DEVICE=cpu or auto)"
        )
    index = int(match.group(1) or 0)
    return [
        ("CUDAExecutionProvider", {"device_id": index}),
        "CPUExecutionProvider",
    ], f"cuda:{index}"


def _session(model: Path, providers: list[object], threads: int, level: str):  # noqa: ANN202
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return ort.InferenceSession(str(model), options, providers=providers)


def _check_signature(session, model: Path) -> tuple[tuple[int, ...], tuple[int, ...], int]:  # noqa: ANN001
    """Cache shapes and unit count, or a clear error for a graph of another signature."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if set(inputs) != set(INPUTS) or set(outputs) != set(OUTPUTS):
        raise ValueError(
            f"{model} is not a streaming CTC graph with inputs {INPUTS} and outputs {OUTPUTS} "
            f"(it has {sorted(inputs)} -> {sorted(outputs)})"
        )
    if list(inputs["chunk"][1:]) != [43, 80] or list(outputs["output"][1:2]) != [10]:
        raise ValueError(f"{model}: chunk must be [B,43,80] and output [B,10,units]")
    return tuple(inputs["att_cache"][1:]), tuple(inputs["cnn_cache"][1:]), outputs["output"][2]


class ConformerEngine:
    """A loaded streaming Conformer CTC graph; one instance per worker process.

    The pipeline hands it audio at the decoded level (its CMVN was fitted on raw int16-range
    log energies, so peak normalisation shifts every feature), short files whole, and chunks
    with half a second of their surrounding silence: each of these was measured to matter.
    """

    source_level = True
    short_files_whole = True
    chunk_pad_s = 0.5

    def __init__(
        self,
        model: str,
        device: str = "auto",
        layout: str = "sdk",
        threads: int = 0,
        optimization: str = "all",
        batch_size: int = 0,
        lm_path: Path | None = None,
        lm_alpha: float = 0.5,
        lm_beta: float = 1.0,
        license: str | None = None,  # shadows the builtin on purpose: EngineInfo's name
        fallback: bool = False,
        note: str | None = None,
    ) -> None:
        import onnxruntime as ort

        from shared.engines.wav2vec2 import card_license

        folder = Path(model).expanduser()
        self.layout: Layout = LAYOUTS[layout]
        if optimization not in _OPT_LEVELS:
            raise ValueError(f"unknown optimization level {optimization!r}: {_OPT_LEVELS}")
        providers, device_name = onnx_providers(device, ort.get_available_providers())
        try:
            self.session = _session(
                folder / "model.onnx", providers, cpu_threads(threads), optimization
            )
            att, cnn, units = _check_signature(self.session, folder / "model.onnx")
            self.vocab = read_units(folder / "units.txt", units)
        except Exception as exc:  # ORT raises its own types; a bad folder is a load failure
            raise SttError(
                ErrorCode.MODEL_LOAD_FAILED,
                f"could not load Conformer CTC model from {str(folder)!r}: {exc}. STT_MODEL must "
                "be a directory holding model.onnx and units.txt of the streaming signature.",
            ) from exc
        self.cache_shapes = (att, cnn)
        self.on_cuda = device_name.startswith("cuda")
        auto_batch = CUDA_BATCH if self.on_cuda else CPU_BATCH
        self.preferred_batch_size = batch_size if batch_size > 0 else auto_batch
        self.lm_path, self.lm_alpha, self.lm_beta = lm_path, lm_alpha, lm_beta
        if lm_path is not None:  # a bad LM should stop start-up, not a job
            get_decoder(pyctcdecode_labels(self.vocab), str(lm_path), lm_alpha, lm_beta)
        self.info = EngineInfo(
            engine="conformer",
            model=str(model),
            device=device_name,
            license=license if license is not None else card_license(str(folder)),
            fallback=fallback,
            note=note,
        )
        log.info(
            "Conformer CTC on %s, %s layout, optimization %s", device_name, layout, optimization
        )

    def _step(self, chunk, offset, att, cnn):  # noqa: ANN001, ANN202
        feeds = {"chunk": chunk, "offset": offset, "att_cache": att, "cnn_cache": cnn}
        out, new_att, new_cnn = self.session.run(list(OUTPUTS), feeds)
        return out, new_att, new_cnn

    def logits(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """Per chunk, ``frames x units`` CTC log-probabilities; chunks batched as streams."""
        features = [log_mel_from_float(np.asarray(c, dtype=np.float32)) for c in chunks]
        out = [np.zeros((0, len(self.vocab.tokens)), np.float32) for _ in chunks]
        live = [i for i, f in enumerate(features) if len(f) > 0]
        size = self.preferred_batch_size
        for first in range(0, len(live), size):
            group = live[first : first + size]
            rows = size if self.on_cuda else None  # one shape per call suits a GPU
            results = run_streams(
                [features[i] for i in group], self.layout, self._step, self.cache_shapes, rows
            )
            for i, result in zip(group, results, strict=True):
                out[i] = result
        return out

    def decode(self, log_probs: np.ndarray, options: DecodeOptions) -> CtcDecoding:
        """Decoded in frame units (``frame_s=1``): the layout maps frames to seconds after."""
        return decode(
            log_probs, self.vocab, options, (self.lm_path, self.lm_alpha, self.lm_beta), 1.0
        )

    def timed_words(self, words: list[Word], frames: int, duration_s: float) -> list[Word]:
        """Frame indices to seconds: the layout's frame times, less the emission delay."""
        times = self.layout.frame_times(frames + 1)
        timed = []
        for word in words:
            start = float(times[int(word.start)]) - EMISSION_DELAY_S
            end = float(times[min(int(word.end), frames)]) - EMISSION_DELAY_S
            start = min(max(start, 0.0), duration_s)
            end = min(max(end, start), duration_s)
            timed.append(Word(word.text, round(start, 3), round(end, 3), word.confidence))
        return timed

    def transcribe_batch(
        self, chunks: list[np.ndarray], options: DecodeOptions
    ) -> list[ChunkResult]:
        results = []
        for chunk, log_probs in zip(chunks, self.logits(chunks), strict=True):
            decoded = self.decode(log_probs, options)
            if not decoded.text:
                results.append(ChunkResult(text=""))
                continue
            duration = len(chunk) / 16_000
            words = self.timed_words(decoded.words, log_probs.shape[0], duration)
            start, end = (words[0].start, words[-1].end) if words else (0.0, duration)
            results.append(ChunkResult(decoded.text, [Segment(decoded.text, start, end, words)]))
        return results
