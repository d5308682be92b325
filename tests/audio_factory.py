"""Synthetic audio for tests: deterministic signals and real encoded files in every format.

Tests use real files rather than mocks so the decoder sees what production sees; these helpers
keep that cheap. wav/flac/ogg are written with soundfile (libsndfile); mp3/m4a with PyAV's
bundled encoders (libmp3lame, ffmpeg's native aac), so no system ffmpeg binary is needed.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

# fmt -> (soundfile format, subtype) for what libsndfile writes itself.
_SOUNDFILE_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),  # Ogg container, Opus codec; libsndfile needs 8/12/16/24/48 kHz
}
# fmt -> (PyAV muxer, encoder).
_PYAV_FORMATS: dict[str, tuple[str, str]] = {"mp3": ("mp3", "libmp3lame"), "m4a": ("ipod", "aac")}
AUDIO_FORMATS = tuple(_SOUNDFILE_FORMATS) + tuple(_PYAV_FORMATS)


def tone(
    seconds: float,
    sr: int = 16000,
    freq: float = 440.0,
    amp: float = 0.5,
    channels: int = 1,
) -> np.ndarray:
    """A sine tone as float32: shape ``(n,)`` for mono, ``(n, channels)`` otherwise.

    Extra channels get slightly different frequencies so a downmix is not a trivial copy.
    """
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    cols = [amp * np.sin(2 * np.pi * freq * (1 + 0.01 * c) * t) for c in range(channels)]
    data = np.stack(cols, axis=1).astype(np.float32)
    return data[:, 0] if channels == 1 else data


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Mono float32 bursts (0.4-1.5 s) of modulated noise + harmonics, with 0.3-0.6 s pauses.

    Not speech, but it has the on/off energy structure voice-activity detectors and chunkers
    key on, and it is reproducible from ``seed``.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    pos = int(rng.uniform(0.1, 0.3) * sr)
    while pos < n:
        length = min(int(rng.uniform(0.4, 1.5) * sr), n - pos)
        t = np.arange(length) / sr
        f0 = rng.uniform(100, 250)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
        noise = rng.standard_normal(length) * 0.3
        envelope = np.sin(np.pi * np.arange(length) / max(length, 1)) * (
            0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)  # syllable-rate modulation
        )
        burst = (voiced + noise) * envelope
        out[pos : pos + length] = (0.3 * burst / max(np.abs(burst).max(), 1e-9)).astype(np.float32)
        pos += length + int(rng.uniform(0.3, 0.6) * sr)
    return out


def write_audio(path: Path, data: np.ndarray, sr: int, fmt: str) -> Path:
    """Encode ``data`` (float32, ``(n,)`` or ``(n, channels)``) at ``sr`` Hz as ``fmt``.

    ``fmt`` is one of wav, flac, ogg (Vorbis), opus (Ogg/Opus), mp3, m4a (AAC). The file name
    is used as given, so a test can write e.g. MP3 content to ``x.wav``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data, dtype=np.float32)
    if fmt in _SOUNDFILE_FORMATS:
        container, subtype = _SOUNDFILE_FORMATS[fmt]
        sf.write(path, data, sr, format=container, subtype=subtype)
    elif fmt in _PYAV_FORMATS:
        _write_pyav(path, data, sr, *_PYAV_FORMATS[fmt])
    else:
        raise ValueError(f"unknown fmt {fmt!r}; expected one of {AUDIO_FORMATS}")
    return path


def _write_pyav(path: Path, data: np.ndarray, sr: int, muxer: str, encoder: str) -> None:
    """Encode with PyAV in 1 s frames (the encoder re-frames to its own frame size)."""
    planar = data.reshape(len(data), -1).T  # (channels, n), as the "fltp" format wants
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    with av.open(str(path), mode="w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=sr, layout=layout)
        for start in range(0, planar.shape[1], sr):
            chunk = np.ascontiguousarray(planar[:, start : start + sr])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = sr
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
