"""Mono 16 kHz samples read by position, from memory or from a processed WAV on disk.

Diarization reads a recording three ways (once through for speech detection, a few thousand
short frames for its spectrum, then one window per voice print); an archived recording of
hours would cost 230 MB of memory an hour if loaded whole, so the file is read where it is
needed instead. Both kinds give the same float32 values for the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from shared.speech.engines.base import SAMPLE_RATE, Float32Array


class Samples(Protocol):
    def __len__(self) -> int: ...

    def read(self, start: int, stop: int) -> Float32Array:
        """Samples [start, stop), clipped to the recording."""
        ...

    def blocks(self, size: int) -> Iterator[Float32Array]:
        """The whole recording in order, ``size`` samples at a time (the last one shorter)."""
        ...


class ArraySamples:
    def __init__(self, audio: Float32Array) -> None:
        self.audio = np.asarray(audio, dtype=np.float32).reshape(-1)

    def __len__(self) -> int:
        return int(self.audio.size)

    def read(self, start: int, stop: int) -> Float32Array:
        return self.audio[max(start, 0) : max(stop, 0)]

    def blocks(self, size: int) -> Iterator[Float32Array]:
        for at in range(0, self.audio.size, size):
            yield self.audio[at : at + size]


class WavSamples:
    """A processed (mono 16 kHz) WAV, opened once; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self._file = sf.SoundFile(str(path))
        if self._file.samplerate != SAMPLE_RATE or self._file.channels != 1:
            self._file.close()
            raise ValueError(f"{path} is not 16 kHz mono processed audio")

    def __enter__(self) -> WavSamples:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def __len__(self) -> int:
        return int(self._file.frames)

    def read(self, start: int, stop: int) -> Float32Array:
        start, stop = max(start, 0), min(stop, len(self))
        if stop <= start:
            return np.zeros(0, np.float32)
        self._file.seek(start)
        data: Float32Array = self._file.read(stop - start, dtype="float32")
        return data

    def blocks(self, size: int) -> Iterator[Float32Array]:
        self._file.seek(0)
        while (block := self._file.read(size, dtype="float32")).size:
            yield block
