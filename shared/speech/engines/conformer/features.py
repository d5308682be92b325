"""Log-mel features exactly as the viet-asr Conformer was trained on them.

The model's own SDK computes a filterbank that is close to Kaldi's but not the same: its
triangles have edges at ``floor(513 * hz / 16000)`` FFT bins, weight 1 at the peak and no area
normalisation, so two of the 80 filters come out empty and always read ``ln(1e-10)``.
kaldi-native-fbank's standard bank does not reproduce it, and the model's CMVN (inside the
graph) was fitted on these values, so this small bank is written by hand.

Samples are taken in the int16 range (no division by 32768) and there is no dither: both
change the log energies the model expects.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import Float32Array

SAMPLE_RATE = 16_000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512
N_MELS = 80
LOW_HZ = 20.0
HIGH_HZ = 7600.0
PREEMPHASIS = 0.97
FLOOR = 1e-10
INT16_SCALE = 32768.0  # float audio in [-1, 1) back to the int16 range the model saw


def _mel(hz: float) -> float:
    mel: float = 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)
    return mel


def _hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz: npt.NDArray[np.float64] = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    return hz


@lru_cache(maxsize=1)
def mel_bank() -> npt.NDArray[np.float64]:
    """``(257, 80)`` weights: rising over ``[left, centre)``, falling over ``[centre, right)``."""
    points = _hz(np.linspace(_mel(LOW_HZ), _mel(HIGH_HZ), N_MELS + 2))
    bins = np.floor((N_FFT + 1) * points / SAMPLE_RATE).astype(int)
    bank = np.zeros((N_FFT // 2 + 1, N_MELS), dtype=np.float64)
    for i in range(N_MELS):
        left, centre, right = bins[i], bins[i + 1], bins[i + 2]
        for k in range(left, centre):
            bank[k, i] = (k - left) / (centre - left)
        for k in range(centre, right):
            bank[k, i] = (right - k) / (right - centre)
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=1)
def povey_window() -> npt.NDArray[np.float64]:
    n = np.arange(FRAME_LENGTH)
    window: npt.NDArray[np.float64] = (
        0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME_LENGTH - 1))
    ) ** 0.85
    window.setflags(write=False)
    return window


def frame_count(samples: int) -> int:
    """Frames with snipped edges: only whole 25 ms windows count."""
    return max(0, (samples - FRAME_LENGTH) // FRAME_SHIFT + 1)


def log_mel(samples: npt.NDArray[Any]) -> Float32Array:
    """``(frames, 80)`` float32 log-mel energies of 16 kHz samples in the int16 range."""
    count = frame_count(len(samples))
    if count == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    x = np.asarray(samples, dtype=np.float64)
    index = np.arange(FRAME_LENGTH)[None, :] + FRAME_SHIFT * np.arange(count)[:, None]
    frames = x[index]
    # Kaldi-style pre-emphasis: the first sample of each frame is emphasised against itself.
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = (frames - PREEMPHASIS * previous) * povey_window()
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    features: Float32Array = np.log(np.maximum(power @ mel_bank(), FLOOR)).astype(np.float32)
    return features


def log_mel_from_float(audio: Float32Array) -> Float32Array:
    """Features of float audio in [-1, 1] (the pipeline's form), scaled back to int16 units."""
    return log_mel(np.asarray(audio, dtype=np.float64) * INT16_SCALE)
