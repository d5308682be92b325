"""A two-channel call decoded once into the job's processed WAV (both parties mixed, for the
page and the mono path) and, where the channels carry different parties, one WAV per channel
with the other party's leakage silenced, for transcribing each channel alone.

The same two streamed passes as ``processed_wav``: stereo float32 spooled beside the target
with running statistics (peaks, correlation, 20 ms frame levels: a few floats per frame), then
the WAVs written block by block. Memory is bounded by the block, not the call's length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.errors import ErrorCode, SttError
from shared.speech.audio import detect_format, iter_decoded
from shared.speech.channels import (
    FRAME,
    BoolArray,
    ChannelStats,
    masked,
    mono_reason,
    own_speech,
)
from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.processed_wav import (
    SILENCE_PEAK,
    PreparedAudio,
    read_raw,
    temp_beside,
    write_normalised,
)


@dataclass(frozen=True)
class StereoAudio:
    """``channels``: one WAV per party, empty when the file is really mono (``note`` says why)."""

    mix: PreparedAudio
    channels: list[Path] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # each channel WAV's scale, undone by gain
    note: str | None = None

    def remove_channels(self) -> None:
        for path in self.channels:
            path.unlink(missing_ok=True)


def prepare_stereo(
    src: Path, dst_wav: Path, max_duration_s: float, block_s: float = 30.0
) -> StereoAudio:
    fmt = detect_format(src)
    dst_wav.parent.mkdir(parents=True, exist_ok=True)
    block = max(FRAME, int(block_s * SAMPLE_RATE) // FRAME * FRAME)  # whole frames per block
    raw = temp_beside(dst_wav, ".f32x2.part")
    stats = ChannelStats()
    try:
        decoded = iter_decoded(src, max_duration_s, block / SAMPLE_RATE, "stereo")
        samples = _spool(decoded, raw, stats)
        reason = mono_reason(stats)
        mix_peak = _write(raw, block, dst_wav, _mixed)
        mix = PreparedAudio(fmt, samples / SAMPLE_RATE, mix_peak, samples, dst_wav)
        if reason is not None:
            return StereoAudio(mix, note=f"stereo taken as mono: {reason}")
        keep = own_speech(stats.levels())
        paths = [dst_wav.with_name(f"{dst_wav.stem}.ch{c + 1}.wav") for c in (0, 1)]
        peaks = [
            _write(raw, block, path, _channel_of(keep, c, block)) for c, path in enumerate(paths)
        ]
        return StereoAudio(mix, paths, peaks)
    finally:
        raw.unlink(missing_ok=True)


Transform = Callable[[Float32Array, int], Float32Array]


def _spool(blocks: Iterator[Float32Array], raw: Path, stats: ChannelStats) -> int:
    samples = 0
    with open(raw, "wb") as f:
        for b in blocks:
            b.astype(np.float32, copy=False).tofile(f)
            stats.add(b)
            samples += len(b)
    if max(stats.peaks) < SILENCE_PEAK:
        raise SttError(ErrorCode.SILENT_AUDIO, "the audio is digital silence")
    return samples


def _mixed(x: Float32Array, _index: int) -> Float32Array:
    mixed: Float32Array = x.mean(axis=1, dtype=np.float32)
    return mixed


def _channel_of(keep: BoolArray, channel: int, block: int) -> Transform:
    """One channel of the i-th block, its leakage frames silenced."""
    per_block = block // FRAME

    def transform(x: Float32Array, index: int) -> Float32Array:
        frames = keep[index * per_block : index * per_block + -(-len(x) // FRAME)]
        return masked(x, frames)[:, channel]

    return transform


def _write(raw: Path, block: int, dst: Path, transform: Transform) -> float:
    """Write ``transform`` of the spooled blocks peak-normalised to ``dst``; return its peak
    (0 when it is all silence: a channel whose every frame was leakage is written silent)."""

    def blocks() -> Iterator[Float32Array]:
        for i, x in enumerate(read_raw(raw, block, 2)):
            yield transform(x, i)

    peak = max((float(np.abs(x).max(initial=0.0)) for x in blocks()), default=0.0)
    tmp = temp_beside(dst, ".wav.part")
    try:
        write_normalised(blocks(), tmp, max(peak, SILENCE_PEAK))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return peak
