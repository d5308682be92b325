"""Streaming Conformer CTC engine: an ONNX graph driven by our own features, loop and decoder.

The model (the one inside the ``viet-asr`` wheel, or a user's own export of the same streaming
signature) is a directory holding ``model.onnx`` and ``units.txt`` (``token id`` per line,
``▁`` starts a word). ONNX Runtime runs it, on CUDA when ``onnxruntime-gpu`` sees a GPU.
Chunks of one file (and on a GPU, of several jobs) are decoded as parallel streams.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.errors import ErrorCode, SttError
from shared.speech.ctc import decode
from shared.speech.ctc_base import CtcDecoding
from shared.speech.ctc_beam import get_decoder, pyctcdecode_labels
from shared.speech.device import cpu_threads
from shared.speech.engines.base import (
    ChunkResult,
    DecodeOptions,
    EngineInfo,
    Float32Array,
    Segment,
    Word,
)
from shared.speech.engines.conformer.features import log_mel_from_float
from shared.speech.engines.conformer.gate import candidates, path_lanes, path_name, split_path
from shared.speech.engines.conformer.lanes import LanedSession
from shared.speech.engines.conformer.session import (
    OPT_LEVELS,
    OUTPUTS,
    check_signature,
    conv_precision,
    make_session,
    model_key,
    onnx_providers,
    prepare_graphs,
    session_device,
)
from shared.speech.engines.conformer.shared_streams import SharedStreams
from shared.speech.engines.conformer.streams import (
    LAYOUTS,
    GraphArray,
    Layout,
    StreamBatch,
    iter_streams,
)
from shared.speech.engines.conformer.tuning import choose_path
from shared.speech.engines.conformer.units import read_units
from shared.speech.engines.model_card import card_license
from shared.speech.tuning import TuningCache, cpu_family

log = logging.getLogger(__name__)
__all__ = ["ConformerEngine", "onnx_providers", "read_units"]
# Tokens come out as one-frame spikes some 0.27 s (median) after speech starts (measured on the
# shared clips against speech onsets); word times are moved back by this much.
EMISSION_DELAY_S = 0.27
CPU_BATCH = 8
DECODES_AHEAD = 2  # chunks' log-probabilities (about 15 MB each for 30 s) waiting to be decoded
CUDA_BATCH = 32


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
        optimization: str = "extended",
        precision: str = "auto",
        batch_size: int = 0,
        lm_path: Path | None = None,
        lm_alpha: float = 0.5,
        lm_beta: float = 1.0,
        license: str | None = None,  # shadows the builtin on purpose: EngineInfo's name
        fallback: bool = False,
        note: str | None = None,
        shared: bool | None = None,
        tuning_dir: Path | None = None,
        graph_dir: Path | None = None,
        lanes: int = 1,
    ) -> None:
        """``optimization`` ``auto`` measures the fastest admitted path on a CPU (``all`` on a
        GPU) and keeps the answer in ``tuning_dir`` (without one, every start measures); the
        rewritten graph is kept in ``graph_dir`` (without one, rewritten at every start)."""
        import onnxruntime as ort

        folder = Path(model).expanduser()
        self.layout: Layout = LAYOUTS[layout]
        if optimization not in (*OPT_LEVELS, "auto"):
            raise ValueError(f"unknown optimization level {optimization!r}: {OPT_LEVELS}")
        providers, device_name = onnx_providers(device, ort.get_available_providers())
        conv_precision(precision)  # a clear error for a precision this engine cannot run
        rows = batch_size if batch_size > 0 else CPU_BATCH
        threads = cpu_threads(threads)

        def build(path: str) -> Any:
            level, int8 = split_path(path)
            ways = path_lanes(path) if device_name == "cpu" else 1
            onnx = folder / "model.onnx"
            session = make_session(onnx, providers, max(1, threads // ways), level, int8, graph_dir)
            return LanedSession(session, ways) if ways > 1 else session

        try:
            path, self.session, how = self._open(
                folder / "model.onnx",
                build,
                optimization,
                precision.strip().lower(),
                lanes,
                device_name == "cpu",
                tuning_dir,
                graph_dir,
                rows,
                {"threads": threads, "ort": ort.__version__},
            )
            att, cnn, units = check_signature(self.session, folder / "model.onnx")
            self.vocab = read_units(folder / "units.txt", units)
        except Exception as exc:  # ORT raises its own types; a bad folder is a load failure
            raise SttError(
                ErrorCode.MODEL_LOAD_FAILED,
                f"could not load Conformer CTC model from {str(folder)!r}: {exc}. STT_MODEL must "
                "be a directory holding model.onnx and units.txt of the streaming signature.",
            ) from exc
        device_name = session_device(self.session, device_name, device)
        self.cache_shapes = (att, cnn)
        (level, conv_int8), lanes_run = split_path(path), path_lanes(path)
        self.on_cuda = device_name.startswith("cuda")
        auto_batch = CUDA_BATCH if self.on_cuda else CPU_BATCH
        self.preferred_batch_size = batch_size if batch_size > 0 else auto_batch
        # Jobs running at once share graph calls (on a GPU by default: rows are what keep it
        # busy); otherwise each call batches only its own chunks.
        self.shared: SharedStreams | None = None
        if shared if shared is not None else self.on_cuda:
            self.shared = SharedStreams(self._new_batch, self.preferred_batch_size)
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
            compute=f"{device_name}: onnxruntime, optimization {level} ({how}), "
            f"front-end convolution {'int8' if conv_int8 else 'float'}"
            + (f", {lanes_run} lanes" if lanes_run > 1 else ""),
        )
        log.info("Conformer CTC on %s, %s layout", self.info.compute, layout)

    @staticmethod
    def _open(
        model: Path,
        build: Callable[[str], Any],
        optimization: str,
        precision: str,
        lanes: int,
        on_cpu: bool,
        tuning_dir: Path | None,
        graph_dir: Path | None,
        rows: int,
        key_parts: dict[str, object],
    ) -> tuple[str, Any, str]:
        """The path asked for, or with ``auto`` the fastest of the paths the accuracy gate
        admitted for this CPU family (remembered in ``tuning_dir``); the path, its session and
        how it was chosen. On a GPU ``auto`` stays ``all``, the level served there before
        (nothing measured there)."""
        int8 = precision == "int8"
        if optimization != "auto":
            path = path_name(optimization, int8, lanes)
            return path, build(path), "set"
        if not on_cpu:
            return path_name("all", int8), build(path_name("all", int8)), "default on GPU"
        gated = candidates(cpu_family(), str(key_parts["ort"]), precision)
        prepare_graphs(model, gated.paths, graph_dir)
        cache = TuningCache(tuning_dir) if tuning_dir is not None else None
        key_parts = key_parts | {"model": model_key(model)}
        path, session, how = choose_path(build, cache, rows, gated.paths, key_parts)
        return path, session, f"{how} of {', '.join(gated.paths)}; {gated.source}"

    def _step(
        self,
        chunk: Float32Array,
        offset: npt.NDArray[np.int64],
        att: GraphArray,
        cnn: GraphArray,
    ) -> tuple[GraphArray, GraphArray, GraphArray]:
        feeds = {"chunk": chunk, "offset": offset, "att_cache": att, "cnn_cache": cnn}
        out, new_att, new_cnn = self.session.run(list(OUTPUTS), feeds)
        return out, new_att, new_cnn

    def logits(self, chunks: list[Float32Array]) -> list[Float32Array]:
        """Per chunk, ``frames x units`` CTC log-probabilities; chunks batched as streams."""
        return list(self.iter_logits(chunks))

    def _new_batch(self) -> StreamBatch[int]:
        rows = self.preferred_batch_size if self.on_cuda else None  # a GPU likes one shape
        return StreamBatch(self.layout, self._step, self.cache_shapes, rows)

    def iter_logits(self, chunks: Iterable[Float32Array]) -> Iterator[Float32Array]:
        """Log-probabilities chunk by chunk, in order (see ``_own_logits``)."""
        if self.shared is not None:
            return self._shared_logits(self.shared, chunks)
        return self._own_logits(chunks)

    def _shared_logits(
        self, shared: SharedStreams, chunks: Iterable[Float32Array]
    ) -> Iterator[Float32Array]:
        """Through the batch shared with concurrent calls; at most ``preferred_batch_size``
        of this call's chunks wait there at once, so one long job cannot crowd the others out."""
        owner = object()
        window: deque[Future[Float32Array] | Float32Array] = deque()
        empty = np.zeros((0, len(self.vocab.tokens)), np.float32)
        for chunk in chunks:
            features = log_mel_from_float(np.asarray(chunk, dtype=np.float32))
            window.append(shared.submit(features, owner) if len(features) else empty)
            while len(window) > self.preferred_batch_size:
                yield _value(window.popleft())
        while window:
            yield _value(window.popleft())

    def _own_logits(self, chunks: Iterable[Float32Array]) -> Iterator[Float32Array]:
        """Log-probabilities chunk by chunk, in order, with up to ``preferred_batch_size`` chunks
        running side by side; a chunk is read from ``chunks`` only when a row frees up."""
        order: list[int] = []  # the chunk index of each stream, in the order they enter
        ready: dict[int, Float32Array] = {}

        def streams() -> Iterator[Float32Array]:
            for index, chunk in enumerate(chunks):
                features = log_mel_from_float(np.asarray(chunk, dtype=np.float32))
                if len(features) == 0:  # shorter than one frame: nothing for the graph
                    ready[index] = np.zeros((0, len(self.vocab.tokens)), np.float32)
                    continue
                order.append(index)
                yield features

        rows = self.preferred_batch_size if self.on_cuda else None  # a GPU likes one shape
        ended = iter_streams(
            streams(), self.layout, self._step, self.cache_shapes, self.preferred_batch_size, rows
        )
        following = 0
        for stream, log_probs in ended:
            ready[order[stream]] = log_probs
            while following in ready:
                yield ready.pop(following)
                following += 1
        while following in ready:  # empty chunks after the last stream
            yield ready.pop(following)
            following += 1

    def decode(self, log_probs: Float32Array, options: DecodeOptions) -> CtcDecoding:
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
        self, chunks: list[Float32Array], options: DecodeOptions
    ) -> list[ChunkResult]:
        return list(self.transcribe_stream(chunks, options))

    def transcribe_stream(
        self, chunks: Iterable[Float32Array], options: DecodeOptions
    ) -> Iterator[ChunkResult]:
        """One result per chunk, in order, each decoded as soon as its stream ends (so the
        frames x units log-probabilities of only a few chunks are ever held).

        Decoding (the beam is Python, holding the GIL) runs on a thread of its own while the
        graph, which releases the GIL, goes on with the next streams: run one after the other,
        a core sat idle through every decode. At most ``DECODES_AHEAD`` chunks wait for it.
        """
        lengths: list[int] = []

        def counted() -> Iterator[Float32Array]:
            for chunk in chunks:
                lengths.append(len(chunk))
                yield chunk

        waiting: deque[Future[ChunkResult]] = deque()
        with ThreadPoolExecutor(1, thread_name_prefix="stt-decode") as decoder:
            for index, log_probs in enumerate(self.iter_logits(counted())):
                duration = lengths[index] / 16_000
                waiting.append(decoder.submit(self._result, log_probs, duration, options))
                while waiting and (waiting[0].done() or len(waiting) > DECODES_AHEAD):
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()

    def _result(
        self, log_probs: Float32Array, duration: float, options: DecodeOptions
    ) -> ChunkResult:
        decoded = self.decode(log_probs, options)
        if not decoded.text:
            return ChunkResult(text="")
        words = self.timed_words(decoded.words, log_probs.shape[0], duration)
        start, end = (words[0].start, words[-1].end) if words else (0.0, duration)
        return ChunkResult(decoded.text, [Segment(decoded.text, start, end, words)])


def _value(item: Future[Float32Array] | Float32Array) -> Float32Array:
    return item.result() if isinstance(item, Future) else item
