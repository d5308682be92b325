"""Words with speakers -> utterances: runs of one speaker's words, split where someone else
speaks in between (also inside a sentence, so a short answer is not swallowed by a long turn).

On one channel the words never overlap, so a run ends exactly where the speaker changes. On a
call split by channel both parties' words interleave while they talk over each other; a run
then ends only where the other party's word falls into this one's pause (or at a long pause),
so a backchannel ("vâng") during a continuous turn stands alone without chopping the turn.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from shared.speech.engines.base import Segment, Word
from shared.speech.written import MAX_SEGMENT_S, PAUSE_S

Key = tuple[str | None, int | None]


def key(word: Word) -> Key:
    return word.speaker, word.channel


def runs(words: Sequence[Word]) -> list[list[Word]]:
    """Utterances' words in order of their first word's start."""
    ordered = sorted(words, key=lambda w: (w.start, w.end))
    mids = [(w.start + w.end) / 2 for w in ordered]
    order = sorted(range(len(ordered)), key=lambda i: mids[i])
    sorted_mids = [mids[i] for i in order]
    keys = [key(ordered[i]) for i in order]
    by_key: dict[Key, list[Word]] = defaultdict(list)
    for w in ordered:
        by_key[key(w)].append(w)
    out: list[list[Word]] = []
    for k, own in by_key.items():
        run = [own[0]]
        for prev, word in zip(own, own[1:], strict=False):
            lo = bisect.bisect_right(sorted_mids, prev.end)
            hi = bisect.bisect_left(sorted_mids, word.start)
            interrupted = any(keys[j] != k for j in range(lo, hi))
            if interrupted or word.start - prev.end >= PAUSE_S:
                out.append(run)
                run = []
            run.append(word)
        out.append(run)
    return sorted(out, key=lambda r: (r[0].start, r[0].end))


def spoken_segments(run: Sequence[Word]) -> list[Segment]:
    """One utterance as spoken segments of at most MAX_SEGMENT_S each (no formatting)."""
    out: list[Segment] = []
    group: list[Word] = []
    for word in run:
        if group and word.end - group[0].start > MAX_SEGMENT_S:
            out.append(_segment(group))
            group = []
        group.append(word)
    if group:
        out.append(_segment(group))
    return out


def _segment(words: list[Word]) -> Segment:
    text = " ".join(w.text.strip() for w in words)
    first = words[0]
    return Segment(
        text, first.start, words[-1].end, words, speaker=first.speaker, channel=first.channel
    )


def with_speaker(segments: Sequence[Segment], run: Sequence[Word]) -> list[Segment]:
    """Written segments of one utterance, marked with its speaker and channel."""
    first = run[0]
    return [replace(s, speaker=first.speaker, channel=first.channel) for s in segments]
