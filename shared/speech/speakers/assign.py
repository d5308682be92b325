"""Turns on the timeline -> a speaker on each word: the turn that overlaps it most.

A word in no turn (diarization's speech detection missed it, or it sits in a gap between two
turns) takes the nearest turn, so every word has a speaker; labels are A, B, ... in order of
first speech, so the same job always reads the same way.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.speech.engines.base import Word
from shared.speech.speakers.options import speaker_label


@dataclass(frozen=True, slots=True)
class Turn:
    start: float
    end: float
    speaker: int  # a cluster number; labels come from the order of first speech


def relabel(turns: Sequence[Turn]) -> dict[int, str]:
    """Cluster number -> label, in order of each speaker's first turn."""
    labels: dict[int, str] = {}
    for turn in sorted(turns, key=lambda t: t.start):
        labels.setdefault(turn.speaker, speaker_label(len(labels)))
    return labels


def assign(words: Sequence[Word], turns: Sequence[Turn]) -> list[Word]:
    if not turns:
        return list(words)
    ordered = sorted(turns, key=lambda t: t.start)
    starts = [t.start for t in ordered]
    labels = relabel(ordered)
    return [replace(w, speaker=labels[_best(w, ordered, starts).speaker]) for w in words]


def _best(word: Word, turns: list[Turn], starts: list[float]) -> Turn:
    """Most overlap among the turns near the word; the nearest turn where none overlaps."""
    hi = bisect.bisect_right(starts, word.end)
    lo = max(0, hi - 8)  # turns end in order closely enough; long turns are merged, not nested
    near = turns[lo : hi + 1] or turns[-1:]

    def overlap(t: Turn) -> float:
        return min(t.end, word.end) - max(t.start, word.start)

    def distance(t: Turn) -> float:
        return max(t.start - word.end, word.start - t.end, 0.0)

    return max(near, key=lambda t: (overlap(t), -distance(t)))
