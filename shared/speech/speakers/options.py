"""A job's choices about speakers, and the limits the API checks them against.

Calls recorded with one party per channel are split by default (the cheapest and surest way to
tell two people apart); diarization of a single channel is opt-in, as with the hosted services,
because it costs time and can be wrong in ways a caller should choose to accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# More speakers than this in one recording is beyond what clustering short windows can tell
# apart; a caller asking for more gets a 400, not a slow wrong answer.
MAX_SPEAKERS = 20
MAX_CHANNEL_NAME = 40


@dataclass(frozen=True, slots=True)
class SpeakerOptions:
    multichannel: bool = True
    channel_names: tuple[str, ...] = ()
    diarize: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> SpeakerOptions:
        """From a job's stored options; absent keys keep the defaults."""
        names = stored.get("channel_names") or ()
        return cls(
            multichannel=bool(stored.get("multichannel", True)),
            channel_names=tuple(str(n) for n in names),
            diarize=bool(stored.get("diarize", False)),
            num_speakers=stored.get("num_speakers"),
            min_speakers=stored.get("min_speakers"),
            max_speakers=stored.get("max_speakers"),
        )

    def speaker_range(self) -> tuple[int, int]:
        """(fewest, most) speakers clustering may find."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        low = self.min_speakers or 1
        return low, max(low, self.max_speakers or MAX_SPEAKERS)


def speaker_label(index: int) -> str:
    """A, B, ..., Z, then S27, S28: labels in order of first speech."""
    return chr(ord("A") + index) if index < 26 else f"S{index + 1}"
