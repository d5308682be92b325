"""Which channels of a call carry different parties, and where each one is only leakage.

A call recorded with agent and customer on separate channels is told apart for free: each
channel is transcribed alone. Two things spoil that. A "stereo" file whose channels are the
same (or one of them silent) is really mono, so it takes the mono path. And every channel of a
real call carries the other party faintly (echo, line crosstalk, 20-35 dB down): transcribed as
it is, every sentence would appear twice. So each 20 ms frame of a channel is kept only where it
is not much quieter than the other channel, with levels compared relative to each channel's
own speech level (recording gains differ between the two sides).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import SAMPLE_RATE, Float32Array

FRAME = SAMPLE_RATE // 50  # 20 ms
SILENT_PEAK = 1e-4  # -80 dBFS, as for a whole file
SAME_CORRELATION = 0.98  # channels this alike are one recording, not two parties
QUIET_CHANNEL_DB = 45.0  # a channel this far below the other in speech level is no party
MARGIN_DB = 10.0  # a frame this much quieter (relative) than the other channel is leakage
ACTIVE_DB = 15.0  # a kept frame must stand this far above its channel's noise floor
MIN_KEPT_FRAMES = 3  # a kept stretch shorter than 60 ms is a flicker of the leak, not speech
PAD_FRAMES = 5  # 100 ms kept around own speech so word edges survive
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class ChannelStats:
    """Running sums over a decode of stereo blocks, and the per-frame levels (dB)."""

    peaks: list[float] = field(default_factory=lambda: [0.0, 0.0])
    sums: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))  # ll, rr, lr
    frame_db: list[Float32Array] = field(default_factory=list)

    def add(self, block: Float32Array) -> None:
        for c in (0, 1):
            self.peaks[c] = max(self.peaks[c], float(np.abs(block[:, c]).max(initial=0.0)))
        left, right = block[:, 0].astype(np.float64), block[:, 1].astype(np.float64)
        self.sums += (left @ left, right @ right, left @ right)
        self.frame_db.append(frame_levels(block))

    def levels(self) -> Float32Array:
        return np.concatenate(self.frame_db) if self.frame_db else np.zeros((0, 2), np.float32)


def frame_levels(block: Float32Array) -> Float32Array:
    """(frames, 2) energies in dB per 20 ms frame; a partial last frame counts as a frame."""
    frames = -(-len(block) // FRAME)
    padded = np.zeros((frames * FRAME, 2), np.float32)
    padded[: len(block)] = block
    power = (padded.reshape(frames, FRAME, 2) ** 2).mean(axis=1)
    levels: Float32Array = (10 * np.log10(power + 1e-10)).astype(np.float32)
    return levels


def mono_reason(stats: ChannelStats) -> str | None:
    """Why this stereo file is really mono, or None when its channels carry different audio."""
    if min(stats.peaks) < SILENT_PEAK:
        return "one channel is silent"
    ll, rr, lr = stats.sums
    if lr / max(np.sqrt(ll * rr), 1e-12) >= SAME_CORRELATION:
        return "both channels carry the same audio"
    speech = _speech_levels(stats.levels())
    if abs(float(speech[0] - speech[1])) >= QUIET_CHANNEL_DB:
        return "one channel carries only noise"
    return None


def _speech_levels(levels: Float32Array) -> Float32Array:
    """Each channel's speech level: a high percentile of its frame levels (loud frames are
    speech in any call; the median would be the silence between turns)."""
    if not len(levels):
        return np.zeros(2, np.float32)
    speech: Float32Array = np.percentile(levels, 95, axis=0).astype(np.float32)
    return speech


def own_speech(levels: Float32Array) -> BoolArray:
    """(frames, 2): where each channel holds its own party rather than the other's leakage.

    Frames near the channel's noise floor are dropped too: silence loses nothing, and the quiet
    ends of the other party's words are where the comparison is least sure."""
    speech = _speech_levels(levels)
    relative = levels - speech
    # the quietest tenth of a call is its silence; capped for a channel that never pauses
    floor = np.minimum(np.percentile(levels, 10, axis=0), speech - 30.0) if len(levels) else speech
    keep = (relative >= relative[:, ::-1] - MARGIN_DB) & (levels >= floor + ACTIVE_DB)
    return np.stack([_padded(_opened(keep[:, c])) for c in (0, 1)], axis=1)


def _opened(keep: BoolArray) -> BoolArray:
    """Drop kept stretches shorter than MIN_KEPT_FRAMES (morphological opening)."""
    width = MIN_KEPT_FRAMES
    kernel = np.ones(width)
    core = np.convolve(keep.astype(float), kernel, mode="same") >= width - 1e-9
    return np.convolve(core.astype(float), kernel, mode="same") > 0


def _padded(keep: BoolArray) -> BoolArray:
    kernel = np.ones(2 * PAD_FRAMES + 1)
    return np.convolve(keep.astype(float), kernel, mode="same") > 0


def masked(block: Float32Array, keep: BoolArray) -> Float32Array:
    """The block with each channel's leakage frames silenced; ``keep`` covers its frames."""
    gains = np.repeat(keep.astype(np.float32), FRAME, axis=0)[: len(block)]
    if len(gains) < len(block):  # never expected; keep the audio rather than fail the job
        gains = np.concatenate([gains, np.ones((len(block) - len(gains), 2), np.float32)])
    return (block * gains).astype(np.float32, copy=False)
