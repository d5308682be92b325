"""The processed WAV: a job's audio written once, peak-normalised, and read back in blocks.

Decoding (``shared.speech.audio``) yields float32 blocks; here they become the 16 kHz mono
PCM_16 WAV a job keeps (and the web page plays), in two streamed passes because the peak is
only known at the end. Digital silence is refused here, where the peak is known.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from shared.errors import ErrorCode, SttError
from shared.speech.audio import detect_format, iter_decoded
from shared.speech.engines.base import SAMPLE_RATE, Float32Array

SILENCE_PEAK = 1e-4  # -80 dBFS: below this the file is digital silence, not quiet speech


@dataclass(frozen=True)
class PreparedAudio:
    format: str
    duration_s: float
    peak: float
    samples: int
    path: Path


def prepare_audio(
    src: Path, dst_wav: Path, max_duration_s: float, block_s: float = 30.0
) -> PreparedAudio:
    """Decode ``src`` and write it peak-normalised as 16 kHz mono PCM_16 WAV at ``dst_wav``.

    Two streamed passes (the peak is only known at the end): decoded float32 goes to a temp
    file beside ``dst_wav``, then is scaled block by block. Temp files never outlive the call.
    """
    src, dst_wav = Path(src), Path(dst_wav)
    fmt = detect_format(src)
    dst_wav.parent.mkdir(parents=True, exist_ok=True)
    raw, tmp_wav = (temp_beside(dst_wav, suffix) for suffix in (".f32.part", ".wav.part"))
    try:
        samples, peak = _spool(iter_decoded(src, max_duration_s, block_s), raw)
        if peak < SILENCE_PEAK:
            raise SttError(ErrorCode.SILENT_AUDIO, "the audio is digital silence")
        write_normalised(read_raw(raw, max(1, int(block_s * SAMPLE_RATE))), tmp_wav, peak)
        os.replace(tmp_wav, dst_wav)  # readers never see a half-written WAV
    finally:
        raw.unlink(missing_ok=True)
        tmp_wav.unlink(missing_ok=True)
    return PreparedAudio(fmt, samples / SAMPLE_RATE, peak, samples, dst_wav)


def temp_beside(dst: Path, suffix: str) -> Path:
    """A unique hidden name beside dst (same filesystem, so os.replace is atomic).

    Not mkstemp: its 0600 mode would stick to the final WAV; these get the usual umask.
    """
    return dst.with_name(f".{dst.name}.{uuid.uuid4().hex}{suffix}")


def _spool(blocks: Iterator[Float32Array], raw: Path) -> tuple[int, float]:
    """Pass 1: append blocks to ``raw`` as float32; return (sample count, peak)."""
    samples, peak = 0, 0.0
    with open(raw, "wb") as f:
        for block in blocks:
            block.astype(np.float32, copy=False).tofile(f)
            samples += len(block)
            peak = max(peak, float(np.abs(block).max()))
    return samples, peak


def read_raw(raw: Path, block: int, channels: int = 1) -> Iterator[Float32Array]:
    """Blocks of ``block`` samples back from a float32 spool (rows of ``channels``)."""
    with open(raw, "rb") as f:
        while (x := np.fromfile(f, dtype=np.float32, count=block * channels)).size:
            yield x if channels == 1 else x.reshape(-1, channels)


def write_normalised(blocks: Iterable[Float32Array], dst: Path, peak: float) -> None:
    """Pass 2: scale mono blocks by 1/peak into a 16 kHz PCM_16 WAV."""
    with sf.SoundFile(
        dst, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16", format="WAV"
    ) as out:
        for x in blocks:
            out.write(np.clip(x / peak, -1.0, 1.0))


def iter_wav_blocks(path: Path, block_samples: int) -> Iterator[Float32Array]:
    """Read a processed (mono 16 kHz) WAV back as float32 blocks without loading it whole."""
    yield from sf.blocks(str(path), blocksize=block_samples, dtype="float32")


def load_wav(path: Path) -> Float32Array:
    """Load a whole processed (mono 16 kHz) WAV as float32, for short files and tests."""
    data: Float32Array
    data, sr = sf.read(str(path), dtype="float32")
    if sr != SAMPLE_RATE or data.ndim != 1:
        raise ValueError(f"{path} is not 16 kHz mono processed audio")
    return data


def peak_normalise(x: Float32Array) -> Float32Array:
    """Scale so the largest magnitude is 1.0; digital silence cannot be scaled up, so reject."""
    if x.size == 0:
        raise SttError(ErrorCode.EMPTY_AUDIO, "the audio has no samples")
    peak = float(np.max(np.abs(x)))
    if not peak >= SILENCE_PEAK:  # also catches NaN
        raise SttError(ErrorCode.SILENT_AUDIO, "the audio is digital silence")
    return (x / peak).astype(np.float32, copy=False)
