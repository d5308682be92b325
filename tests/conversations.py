"""Conversations with known speaker turns, built from the team's real Vietnamese clips.

Three voices in the shared data, grouped by listening and by CAM++ similarity (0.7-0.9 within a
group, 0.3-0.5 across): V (the VIVOS DEV01 reader, 9 clips), F (the FPT clips, 5) and C (the
two 510_cbsk clips). Each clip is trimmed to its speech (frames within 40 dB of its peak) so the
reference turns are where the voice is; turns alternate with short pauses, as in a call. The
same tracks make a mono mix, an 8 kHz telephone version, or a two-channel call where each
channel also carries the other party faintly (leakage).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.speech.audio import iter_decoded
from shared.speech.engines.base import SAMPLE_RATE

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VOICES = {
    "V": [f"vi-speech/vivos_VIVOSDEV01_R{n}.wav" for n in ("002", "003", "012", "027", "028")]
    + [f"vi-speech/vivos_VIVOSDEV01_R{n}.wav" for n in ("034", "043", "044", "055")],
    "F": [f"vi-speech/fosd_{n}.wav" for n in ("000128", "002985", "007201", "011755", "014093")],
    "C": [f"vi-unlabelled/510_cbsk___file_goc_510201920_{n}.wav" for n in ("3", "7")],
}
Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Conversation:
    tracks: dict[str, np.ndarray]  # one full-length track per speaker, silent outside turns
    turns: list[Turn]

    @property
    def mono(self) -> np.ndarray:
        mix = sum(self.tracks.values())
        return (mix / max(float(np.abs(mix).max()), 1e-9) * 0.8).astype(np.float32)

    def call(self, leak_db: float, noise_db: float = -55.0, seed: int = 0) -> np.ndarray:
        """(samples, 2): each speaker on a channel, the other leaking in ``leak_db`` below."""
        a, b = (self.tracks[s] for s in sorted(self.tracks)[:2])
        leak = 10 ** (leak_db / 20)
        noise = np.random.default_rng(seed).normal(0, 10 ** (noise_db / 20), (len(a), 2))
        stereo = np.stack([a + leak * b, b + leak * a], axis=1) + noise
        return (stereo / max(float(np.abs(stereo).max()), 1e-9) * 0.8).astype(np.float32)


def _load(rel: str) -> np.ndarray:
    """16 kHz mono through the service's own decoder (the FPT clips are 22.05 kHz)."""
    return _trimmed(np.concatenate(list(iter_decoded(SHARED / rel, 600.0))))


def _trimmed(audio: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    frames = len(audio) // 320
    power = (audio[: frames * 320].reshape(frames, 320) ** 2).mean(1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(power / power.max()) > floor_db)
    if not len(loud):
        return audio
    return audio[loud[0] * 320 : (loud[-1] + 1) * 320]


def conversation(
    voices: str = "VF", turns: int = 12, seed: int = 0, pause: tuple[float, float] = (0.3, 0.9)
) -> Conversation:
    """``turns`` turns cycling through ``voices`` (a speaker sometimes keeps the floor)."""
    rng = random.Random(seed)
    clips = {v: [_load(rel) for rel in VOICES[v]] for v in voices}
    for v in clips:
        rng.shuffle(clips[v])
    pieces: list[tuple[str, np.ndarray]] = []
    speaker = voices[0]
    for i in range(turns):
        pieces.append((speaker, clips[speaker][i % len(clips[speaker])]))
        others = [v for v in voices if v != speaker]
        speaker = rng.choice(others) if rng.random() > 0.15 else speaker
    gaps = [int(rng.uniform(*pause) * SAMPLE_RATE) for _ in pieces]
    length = sum(len(p) for _, p in pieces) + sum(gaps) + SAMPLE_RATE // 2
    tracks = {v: np.zeros(length, np.float32) for v in voices}
    out: list[Turn] = []
    t = SAMPLE_RATE // 2
    for (speaker, piece), gap in zip(pieces, gaps, strict=True):
        tracks[speaker][t : t + len(piece)] += piece / max(float(np.abs(piece).max()), 1e-9)
        out.append((t / SAMPLE_RATE, (t + len(piece)) / SAMPLE_RATE, speaker))
        t += len(piece) + gap
    return Conversation(tracks, out)


def write_rttm(path: Path, uri: str, turns: list[Turn]) -> None:
    lines = [
        f"SPEAKER {uri} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>" for s, e, spk in turns
    ]
    path.write_text("\n".join(lines) + "\n")
