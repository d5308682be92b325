"""What every ASR engine gives the pipeline: small result dataclasses and one protocol.

An engine is loaded once per worker process (model weights are the expensive part) and then
called for batches of 16 kHz mono float32 chunks. Times in results are seconds relative to the
chunk; the pipeline shifts them to the file's timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
# What the speech core hands around: audio samples (16 kHz mono), features, logits and
# log-probabilities are all float32 arrays.
Float32Array: TypeAlias = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Word:
    """``speaker`` and ``channel`` are set only where speakers were told apart (diarization, or
    a call recorded with one party per channel); rows stored before they existed read as None."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None
    channel: int | None = None


@dataclass(frozen=True, slots=True)
class Token:
    """One written token ("15", "Hà", "Nội,", "10:30") and the spoken words it was made from.

    ``first_word``..``last_word`` (inclusive) index the segment's ``words``, so search, subtitles
    and highlights can map written text back to the recogniser's word times.
    """

    text: str
    start: float
    end: float
    first_word: int
    last_word: int


@dataclass(frozen=True, slots=True)
class Segment:
    """``text`` is what readers get; ``spoken_text`` keeps the recogniser's own words when
    ``text`` was formatted (empty when it was not), and ``tokens`` the written tokens. A segment
    never spans two speakers: ``speaker``/``channel`` are its words' (None when not told apart)."""

    text: str
    start: float
    end: float
    words: list[Word] = field(default_factory=list)
    spoken_text: str = ""
    tokens: list[Token] = field(default_factory=list)
    speaker: str | None = None
    channel: int | None = None


@dataclass(slots=True)
class ChunkResult:
    """One chunk's transcription; ``segments`` may be empty when the engine gives no times."""

    text: str
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """Per-job decoding choices; the defaults reproduce the first version (greedy CTC)."""

    decoder: str = "greedy"
    beam_width: int = 32
    hotwords: tuple[str, ...] = ()
    hotword_weight: float = 10.0
    language: str = "vi"


# Where neither a job nor STT_DECODER names a decoder ("auto"): the engine family's own best way.
# The Conformer was trained for prefix beam search (its SDK's decoding; any width >= 4 gives
# the same text) and loses about a point of WER greedily; wav2vec2's first version was greedy.
AUTO_DECODING: dict[str, dict[str, object]] = {"conformer": {"decoder": "beam", "beam_width": 8}}


def auto_decoding(engine: str, decoder: str, beam_width: int) -> dict[str, object]:
    """The decoding options a job without its own gets, for an engine family's name."""
    if decoder != "auto":
        return {"decoder": decoder, "beam_width": beam_width}
    return dict(AUTO_DECODING.get(engine, {"decoder": "greedy", "beam_width": beam_width}))


@dataclass(frozen=True, slots=True)
class EngineInfo:
    engine: str
    model: str
    device: str
    license: str | None = None
    fallback: bool = False
    note: str | None = None  # what operators should know of the model, e.g. its measured WER
    compute: str | None = None  # where and at what precision it runs, and how that was chosen


class Engine(Protocol):
    info: EngineInfo

    def transcribe_batch(
        self, chunks: list[Float32Array], options: DecodeOptions
    ) -> list[ChunkResult]:
        """Transcribe each 16 kHz float32 mono chunk; one result per chunk, same order."""
        ...


class StreamingEngine(Engine, Protocol):
    """An engine that keeps its own batch full (a freed row takes the next chunk at once)."""

    def transcribe_stream(
        self, chunks: Iterable[Float32Array], options: DecodeOptions
    ) -> Iterator[ChunkResult]:
        """One result per chunk, in order, each as soon as it is done."""
        ...


class WholeFileEngine(Engine, Protocol):
    """An engine that sets ``prefers_whole_file``: it decodes the whole recording itself."""

    def transcribe_file_audio(self, audio: Float32Array, options: DecodeOptions) -> ChunkResult:
        """The whole 16 kHz float32 mono recording as one result."""
        ...
