"""Conversations with known speaker turns, built from the team's real Vietnamese clips.

Three voices in the shared data, grouped by listening and by CAM++ similarity (0.7-0.9 within a
group, 0.3-0.5 across): V (the VIVOS DEV01 reader, 9 clips), F (the FPT clips, 5) and C (the
two 510_cbsk clips). Clips are cut into phrases at their pauses and each phrase trimmed to its
speech (frames within 35 dB of its peak and 15 dB over its noise floor), so the reference turns
are where the voice is; turns alternate with short pauses, as in a call. The same tracks make a
mono mix, an 8 kHz telephone version, or a two-channel call where each channel also carries the
other party faintly (leakage).
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
FRAME = SAMPLE_RATE // 50


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
    return np.concatenate(list(iter_decoded(SHARED / rel, 600.0)))


def _frame_db(audio: np.ndarray) -> np.ndarray:
    frames = len(audio) // FRAME
    power = (audio[: frames * FRAME].reshape(frames, FRAME) ** 2).mean(1) + 1e-12
    return 10 * np.log10(power / power.max())


def phrases(
    audio: np.ndarray, floor_db: float = -35.0, pause: int = 8, above_noise_db: float = 15.0
) -> list[np.ndarray]:
    """A clip cut at its pauses (``pause`` frames of 20 ms that are not speech), each phrase
    trimmed to its speech; phrases under 0.8 s stay joined to their neighbour. A frame is
    speech when it is within ``floor_db`` of the peak and ``above_noise_db`` over the clip's
    noise floor (its 10th-percentile frame): the VIVOS recordings' room noise sits near -35 dB
    of their peak, and a peak-relative floor alone counted up to a second of it as speech."""
    db = _frame_db(audio)
    loud = (db > floor_db) & (db > np.percentile(db, 10) + above_noise_db)
    if not loud.any():
        return []
    pieces: list[tuple[int, int]] = []
    start = last = int(np.flatnonzero(loud)[0])
    for i in np.flatnonzero(loud)[1:]:
        if i - last > pause and (last + 1 - start) * FRAME >= 0.8 * SAMPLE_RATE:
            pieces.append((start, last + 1))
            start = int(i)
        last = int(i)
    pieces.append((start, last + 1))
    return [audio[s * FRAME : e * FRAME] for s, e in pieces]


def conversation(
    voices: str = "VF",
    turns: int = 12,
    seed: int = 0,
    pause: tuple[float, float] = (0.3, 0.9),
    reuse: bool = False,
) -> Conversation:
    """Up to ``turns`` turns through ``voices`` (a speaker sometimes keeps the floor), each a
    phrase of that voice's clips. No phrase is used twice unless ``reuse`` (timing runs only):
    a repeated recording is its own nearest neighbour, which no real conversation offers."""
    rng = random.Random(seed)
    pool = {v: [p for rel in VOICES[v] for p in phrases(_load(rel))] for v in voices}
    for v in pool:
        rng.shuffle(pool[v])
    pieces: list[tuple[str, np.ndarray]] = []
    speaker, used = voices[0], {v: 0 for v in voices}
    while len(pieces) < turns and (reuse or used[speaker] < len(pool[speaker])):
        pieces.append((speaker, pool[speaker][used[speaker] % len(pool[speaker])]))
        used[speaker] += 1
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
