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
from shared.speech.channel_wav import prepare_stereo
from shared.speech.engines.base import Segment, Word
from shared.speech.processed_wav import PreparedAudio, load_wav, prepare_audio
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


def transcribe_speakers(
    src: Path,
    processed_wav: Path,
    max_duration_s: float,
    options: SpeakerOptions,
    transcribe: TranscribeWav,
    diarizer: DiarizerFn | None,
    progress: ProgressFn,
) -> Attributed:
    channels = channel_count(src)
    summary = SpeakerSummary(channels=max(channels, 1))
    if channels == 2 and options.multichannel:
        return _stereo(src, processed_wav, max_duration_s, options, transcribe, diarizer, progress)
    if channels == 2:
        summary.notes.append("multichannel=false: the two channels were mixed down")
    elif channels > 2:
        summary.notes.append(f"{channels} channels mixed down to one: only 2-channel calls split")
    prepared = prepare_audio(src, processed_wav, max_duration_s)
    return _mono(prepared, summary, options, transcribe, diarizer, progress)


def _mono(
    prepared: PreparedAudio,
    summary: SpeakerSummary,
    options: SpeakerOptions,
    transcribe: TranscribeWav,
    diarizer: DiarizerFn | None,
    progress: ProgressFn,
) -> Attributed:
    segments = transcribe(prepared.path, prepared.peak, progress)
    if options.channel_names:
        summary.notes.append("channel_names ignored: the audio has one channel to transcribe")
    if not options.diarize:
        return Attributed(prepared, segments, None, summary)
    words = [w for s in segments for w in spread_words(s) if w.text.strip()]
    try:
        found = _diarize(prepared.path, options, diarizer)
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


def _diarize(wav: Path, options: SpeakerOptions, diarizer: DiarizerFn | None) -> Diarization:
    if diarizer is None:
        raise RuntimeError("this worker has no speaker model")
    low, high = options.speaker_range()
    return diarizer().diarize(load_wav(wav), low, high)


def _stereo(
    src: Path,
    processed_wav: Path,
    max_duration_s: float,
    options: SpeakerOptions,
    transcribe: TranscribeWav,
    diarizer: DiarizerFn | None,
    progress: ProgressFn,
) -> Attributed:
    stereo = prepare_stereo(src, processed_wav, max_duration_s)
    summary = SpeakerSummary(channels=2, notes=[stereo.note] if stereo.note else [])
    if not stereo.channels:
        return _mono(stereo.mix, summary, options, transcribe, diarizer, progress)
    try:
        per_channel = [
            transcribe(path, peak, _part_of(progress, c, 2))
            for c, (path, peak) in enumerate(zip(stereo.channels, stereo.peaks, strict=True))
        ]
    finally:
        stereo.remove_channels()
    if options.diarize:
        summary.notes.append("diarize not needed: the two channels already separate the speakers")
    words = label_channels(
        [[w for s in segs for w in spread_words(s) if w.text.strip()] for segs in per_channel],
        options.channel_names,
    )
    summary.mode, summary.labels = CHANNELS, _channel_labels(words, options)
    segments = sorted((s for segs in per_channel for s in segs), key=lambda s: s.start)
    return Attributed(stereo.mix, segments, words, summary)


def _channel_labels(words: list[Word], options: SpeakerOptions) -> list[str]:
    """The named channels always count (a silent party is still a party); else who spoke."""
    return list(options.channel_names[:2]) or labels_in_order(words)


def _part_of(progress: ProgressFn, index: int, parts: int) -> ProgressFn:
    return lambda fraction: progress((index + fraction) / parts)
