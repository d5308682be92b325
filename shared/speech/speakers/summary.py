"""What a job records about its speakers: how they were told apart, how many, and any note
(a stereo file taken as mono, too little speech to cluster, ...), so a caller can tell "one
speaker" from "not split" without reading the words."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.speech.engines.base import Word
from shared.speech.speakers.options import speaker_label

NONE, CHANNELS, DIARIZATION = "none", "channels", "diarization"


@dataclass(slots=True)
class SpeakerSummary:
    mode: str = NONE
    channels: int = 1
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "count": len(self.labels) if self.mode != NONE else None,
            "labels": self.labels,
            "channels": self.channels,
            "notes": self.notes,
        }


def label_channels(per_channel: Sequence[Sequence[Word]], names: Sequence[str]) -> list[Word]:
    """Each channel's words marked with it; the label is the channel's name when the job gave
    names, else A, B, ... in order of first speech."""
    firsts = sorted(
        (min(w.start for w in words), c) for c, words in enumerate(per_channel) if words
    )
    order = {c: i for i, (_, c) in enumerate(firsts)}
    out: list[Word] = []
    for c, words in enumerate(per_channel):
        label = names[c] if c < len(names) else speaker_label(order.get(c, c))
        out.extend(replace(w, speaker=label, channel=c) for w in words)
    return out


def labels_in_order(words: Sequence[Word]) -> list[str]:
    seen: dict[str, None] = {}
    for w in sorted(words, key=lambda w: w.start):
        if w.speaker is not None:
            seen.setdefault(w.speaker, None)
    return list(seen)
