"""Audio in, spoken segments out, with each word's speaker where speakers can be told apart.

Three paths, chosen per file: a call whose two channels carry different parties is transcribed
channel by channel (each with the other party's leakage silenced) and merged on one timeline;
a single channel is diarized when the job asks for it; everything else is transcribed as one
mixed channel, as before. Whatever goes wrong with speakers, the job keeps its transcript:
the reason lands in the summary's notes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from shared.speech.audio import channel_count
from shared.speech.channel_wav import StereoAudio, prepare_stereo
from shared.speech.engines.base import Segment, Word
from shared.speech.processed_wav import PreparedAudio, prepare_audio
from shared.speech.speakers.assign import assign
from shared.speech.speakers.diarizer import Diarization, Diarizer
from shared.speech.speakers.options import SpeakerOptions
from shared.speech.speakers.summary import (
    CHANNELS,
    DIARIZATION,
    SpeakerSummary,
    label_channels,
    labels_in_order,
)
from shared.speech.written import spread_words

log = logging.getLogger(__name__)
ProgressFn = Callable[[float], None]
# (WAV, gain to undo its normalisation, progress) -> spoken segments on its timeline
TranscribeWav = Callable[[Path, float, ProgressFn], list[Segment]]
DiarizerFn = Callable[[], Diarizer]


@dataclass(frozen=True, slots=True)
class Attributed:
    prepared: PreparedAudio
    segments: list[Segment]
    words: list[Word] | None  # None: speakers not told apart, the segments stand as they are
    summary: SpeakerSummary


@dataclass(frozen=True, slots=True)
class SpeakerPass:
    """One job's way through the three paths: its options and how to transcribe a WAV."""

    options: SpeakerOptions
    transcribe: TranscribeWav
    diarizer: DiarizerFn | None
    progress: ProgressFn

    def run(self, src: Path, processed_wav: Path, max_duration_s: float) -> Attributed:
        channels = channel_count(src)
        summary = SpeakerSummary(channels=max(channels, 1))
        if channels == 2 and self.options.multichannel:
            return self._stereo(prepare_stereo(src, processed_wav, max_duration_s))
        if channels == 2:
            summary.notes.append("multichannel=false: the two channels were mixed down")
        elif channels > 2:
            summary.notes.append(
                f"{channels} channels mixed down to one: only 2-channel calls split"
            )
        return self._mono(prepare_audio(src, processed_wav, max_duration_s), summary)

    def _mono(self, prepared: PreparedAudio, summary: SpeakerSummary) -> Attributed:
        segments = self.transcribe(prepared.path, prepared.peak, self.progress)
        if self.options.channel_names:
            summary.notes.append("channel_names ignored: the audio has one channel to transcribe")
        if not self.options.diarize:
            return Attributed(prepared, segments, None, summary)
        words = [w for s in segments for w in spread_words(s) if w.text.strip()]
        try:
            found = self._diarize(prepared.path)
        except Exception as exc:  # noqa: BLE001 - the transcript is kept; the reason is recorded
            log.exception("diarization failed; transcript kept without speakers")
            summary.notes.append(f"diarization failed, no speakers: {type(exc).__name__}: {exc}")
            return Attributed(prepared, segments, None, summary)
        summary.notes.extend([found.note] if found.note else [])
        labelled = (
            assign(words, found.turns) if found.turns else [replace(w, speaker="A") for w in words]
        )
        summary.mode, summary.labels = DIARIZATION, labels_in_order(labelled) or ["A"]
        return Attributed(prepared, segments, labelled, summary)

    def _diarize(self, wav: Path) -> Diarization:
        if self.diarizer is None:
            raise RuntimeError("this worker has no speaker model")
        low, high = self.options.speaker_range()
        return self.diarizer().diarize_wav(wav, low, high)

    def _stereo(self, stereo: StereoAudio) -> Attributed:
        summary = SpeakerSummary(channels=2, notes=[stereo.note] if stereo.note else [])
        if not stereo.channels:
            return self._mono(stereo.mix, summary)
        try:
            per_channel = [
                self.transcribe(path, peak, _part_of(self.progress, c, 2))
                for c, (path, peak) in enumerate(zip(stereo.channels, stereo.peaks, strict=True))
            ]
        finally:
            stereo.remove_channels()
        if self.options.diarize:
            summary.notes.append("diarize not needed: the two channels already separate speakers")
        words = label_channels(
            [[w for s in segs for w in spread_words(s) if w.text.strip()] for segs in per_channel],
            self.options.channel_names,
        )
        named = list(self.options.channel_names[:2])  # a named party counts even when silent
        summary.mode, summary.labels = CHANNELS, named or labels_in_order(words)
        segments = sorted((s for segs in per_channel for s in segs), key=lambda s: s.start)
        return Attributed(stereo.mix, segments, words, summary)


def _part_of(progress: ProgressFn, index: int, parts: int) -> ProgressFn:
    return lambda fraction: progress((index + fraction) / parts)
