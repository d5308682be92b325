"""Stitching chunk results back onto the file's timeline, where forced cuts made them overlap.

``shared.speech.chunking`` cuts a recording into chunks (overlapping only where a stretch of
speech had no pause to cut at); each engine answers a chunk in chunk-relative time. Here those
answers move onto the file's timeline, the words two overlapping chunks both heard are kept once,
and stitched results join into one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from shared.speech.engines.base import ChunkResult, Segment, Word


def shift_result(result: ChunkResult, offset_s: float) -> ChunkResult:
    """Move a chunk-relative result onto the file's timeline."""

    def word(w: Word) -> Word:
        return Word(w.text, w.start + offset_s, w.end + offset_s, w.confidence)

    segments = [
        Segment(s.text, s.start + offset_s, s.end + offset_s, [word(w) for w in s.words])
        for s in result.segments
    ]
    return ChunkResult(result.text, segments)


def keep_between(result: ChunkResult, lo: float, hi: float) -> ChunkResult:
    """Keep the words (or word-less segments) whose midpoint lies in [lo, hi)."""

    def inside(a: float, b: float) -> bool:
        return lo <= (a + b) / 2 < hi

    segments: list[Segment] = []
    for seg in result.segments:
        words = [w for w in seg.words if inside(w.start, w.end)]
        if len(words) == len(seg.words) and (words or inside(seg.start, seg.end)):
            segments.append(seg)
        elif words:
            segments.append(
                Segment(" ".join(w.text for w in words), words[0].start, words[-1].end, words)
            )
    if segments == result.segments:
        return result
    return ChunkResult(" ".join(s.text.strip() for s in segments if s.text.strip()), segments)


def stitch(parts: Iterable[tuple[float, float, ChunkResult]]) -> Iterator[ChunkResult]:
    """Global-time results from ``(chunk start_s, chunk end_s, chunk-relative result)`` in order.

    Where two chunks overlap (forced splits), the overlap is cut at its middle: the first chunk
    keeps the words whose midpoint lies before it, the second those after. Cutting in the middle
    rather than at the first chunk's end keeps the word that the first chunk heard only in part.
    Results without segments carry no times and pass through untrimmed. Yields lag one part
    behind, because a chunk's tail is only settled once the next chunk's start is known.
    """
    held: tuple[float, ChunkResult, float] | None = None  # (end_s, global result, keep-from)
    for start, end, result in parts:
        current = shift_result(result, start)
        lo = -math.inf
        if held is not None:
            prev_end, prev, prev_lo = held
            cut = (start + prev_end) / 2 if start < prev_end else math.inf
            yield keep_between(prev, prev_lo, cut)
            lo = cut if cut != math.inf else -math.inf
        held = (end, current, lo)
    if held is not None:
        yield keep_between(held[1], held[2], math.inf)


def merge_results(results: Iterable[ChunkResult]) -> ChunkResult:
    """One result from stitched ones: texts joined by a space, segments concatenated."""
    items = list(results)
    text = " ".join(r.text.strip() for r in items if r.text.strip())
    return ChunkResult(text, [s for r in items for s in r.segments])
