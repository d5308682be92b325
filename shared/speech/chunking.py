"""Cut long recordings into engine-sized chunks at pauses, streaming.

Engines have a sweet spot (and Whisper a hard limit) of about 30 s, and a 2-hour file must not
be held in memory, so the pipeline reads fixed blocks and this module turns them into chunks of
at most ``max_chunk_s`` whose cuts fall in pauses found by VAD, never inside a word when a pause
exists. Only a stretch of speech longer than ``max_chunk_s`` with no pause (music, crosstalk) is
cut mid-speech, into equal pieces that overlap by ``overlap_s``; ``stitch`` later removes the
words both pieces heard (``shared.speech.stitching``). Times are global to the file throughout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shared.speech.engines.base import SAMPLE_RATE, Float32Array

Span = tuple[float, float]


class Detector(Protocol):
    def speech_spans(self, audio: Float32Array, offset_s: float = 0.0) -> list[Span]: ...


@dataclass(frozen=True, slots=True)
class Chunk:
    start_s: float
    end_s: float
    audio: Float32Array


def _normalise(spans: Iterable[Span], lo: float, hi: float) -> list[Span]:
    """Sort, clip to [lo, hi], drop empty spans and merge overlapping ones."""
    out: list[list[float]] = []
    for s, e in sorted((max(lo, s), min(hi, e)) for s, e in spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _split_span(s: float, e: float, max_chunk_s: float, overlap_s: float) -> list[Span]:
    """Equal pieces of at most max_chunk_s overlapping by overlap_s (no pause to cut at)."""
    n = math.ceil((e - s - overlap_s) / (max_chunk_s - overlap_s) - 1e-9)
    piece = (e - s + (n - 1) * overlap_s) / n
    step = piece - overlap_s
    return [(s + k * step, e if k == n - 1 else s + k * step + piece) for k in range(n)]


def _group(spans: list[Span], max_chunk_s: float, overlap_s: float, min_fill: float) -> list[Span]:
    """Speech extents of the chunks: runs of spans that fit, closed at the longest pause."""
    groups: list[Span] = []
    i, n = 0, len(spans)
    while i < n:
        s, e = spans[i]
        if e - s > max_chunk_s:
            groups.extend(_split_span(s, e, max_chunk_s, overlap_s))
            i += 1
            continue
        last = i
        while last + 1 < n and spans[last + 1][1] - s <= max_chunk_s:
            last += 1
        best = last
        if last < n - 1:  # more speech follows: among well-filled ends, cut at the longest pause
            full = [k for k in range(i, last + 1) if spans[k][1] - s >= min_fill * max_chunk_s]
            if full:
                best = max(full, key=lambda k: (spans[k + 1][0] - spans[k][1], k))
        groups.append((s, spans[best][1]))
        i = best + 1
    return groups


def plan_chunks(
    spans: list[Span],
    total_s: float,
    max_chunk_s: float,
    pad_s: float = 0.2,
    overlap_s: float = 1.0,
    start_s: float = 0.0,
    min_fill: float = 0.5,
) -> list[Span]:
    """Chunks ``(start_s, end_s)`` covering all speech in [start_s, total_s].

    Spans are packed while their extent fits ``max_chunk_s``; once a chunk is at least
    ``min_fill`` full, the cut goes into the longest following pause, which keeps sentences
    together. Each chunk is padded by up to ``pad_s`` into the silence around it, at most half
    of a pause so neighbours never overlap, and never beyond ``max_chunk_s`` in total. Only
    pieces of one over-long span overlap each other.
    """
    if overlap_s * 2 >= max_chunk_s:
        raise ValueError("overlap_s must be less than half of max_chunk_s")
    groups = _group(_normalise(spans, start_s, total_s), max_chunk_s, overlap_s, min_fill)
    chunks: list[Span] = []
    for k, (a, b) in enumerate(groups):
        prev = groups[k - 1][1] if k else None
        nxt = groups[k + 1][0] if k + 1 < len(groups) else None
        left = pad_s if prev is None else max(0.0, min(pad_s, (a - prev) / 2))
        right = pad_s if nxt is None else max(0.0, min(pad_s, (nxt - b) / 2))
        slack = max(0.0, max_chunk_s - (b - a))
        left = min(left, slack / 2)
        right = min(right, slack - left)
        chunks.append((max(start_s, a - left), min(total_s, b + right)))
    return chunks


class StreamChunker:
    """Turns a stream of audio blocks into chunks with a buffer of at most ``window_s`` audio.

    Each time the buffer fills, VAD runs on it, chunks that later audio cannot change are
    emitted, and the buffer keeps only what is still undecided (from the next chunk's start,
    with ``context_s`` of lead-in so VAD does not start cold on speech). Block boundaries play no
    part in the cuts, so a word straddling two blocks stays whole. ``peak_buffered_samples`` and
    ``consumed_s`` are there for tests and progress reporting.
    """

    def __init__(
        self,
        detector: Detector,
        max_chunk_s: float = 25.0,
        pad_s: float = 0.2,
        overlap_s: float = 1.0,
        window_s: float | None = None,
        guard_s: float = 1.0,
        context_s: float = 1.0,
    ) -> None:
        self.detector, self.max_chunk_s, self.pad_s = detector, max_chunk_s, pad_s
        self.overlap_s, self.guard_s, self.context_s = overlap_s, guard_s, context_s
        # the floor guarantees each pass frees room: undecided audio is < max + guard + context
        floor = max_chunk_s + 2 * pad_s + guard_s + context_s + 2.0
        self.window_s = max(window_s or 3 * max_chunk_s, floor)
        self._buf = np.zeros(int(self.window_s * SAMPLE_RATE), dtype=np.float32)
        self._n = 0  # samples held in _buf
        self._b0 = 0  # global sample index of _buf[0]
        self.peak_buffered_samples = 0
        self.consumed_s = 0.0

    def chunks(self, blocks: Iterable[Float32Array]) -> Iterator[Chunk]:
        cap = self._buf.size
        for block in blocks:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            pos = 0
            while pos < block.size:
                take = min(cap - self._n, block.size - pos)
                self._buf[self._n : self._n + take] = block[pos : pos + take]
                self._n, pos = self._n + take, pos + take
                self.consumed_s += take / SAMPLE_RATE
                self.peak_buffered_samples = max(self.peak_buffered_samples, self._n)
                if self._n == cap:
                    yield from self._process(final=False)
        yield from self._process(final=True)

    def _process(self, final: bool) -> Iterator[Chunk]:
        b0, b1 = self._b0 / SAMPLE_RATE, (self._b0 + self._n) / SAMPLE_RATE
        spans = self.detector.speech_spans(self._buf[: self._n], offset_s=b0)
        plan = plan_chunks(spans, b1, self.max_chunk_s, self.pad_s, self.overlap_s, start_s=b0)
        ready = len(plan)
        if not final:
            ready = 0
            for k, (s, e) in enumerate(plan):
                # near the buffer's end VAD may not have seen the pause yet; the last chunk
                # waits while later speech could still join it
                if e > b1 - self.guard_s or (k == len(plan) - 1 and s >= b1 - self.max_chunk_s):
                    break
                ready = k + 1
        for s, e in plan[:ready]:
            i, j = self._index(s), self._index(e)
            if j > i:
                start, end = (self._b0 + i) / SAMPLE_RATE, (self._b0 + j) / SAMPLE_RATE
                yield Chunk(start, end, self._buf[i:j].copy())
        if final:
            self._b0, self._n = self._b0 + self._n, 0
            return
        last_end = plan[ready - 1][1] if ready else b0
        nxt = plan[ready][0] if ready < len(plan) else b1 - self.guard_s
        if nxt < last_end:  # a forced split goes on: keep its overlap
            cut = nxt
        else:
            cut = max(last_end, min(nxt, b1 - self.guard_s) - self.context_s)
        drop = self._index(cut)
        if drop <= 0:
            raise RuntimeError("chunker made no progress; window_s too small")
        self._buf[: self._n - drop] = self._buf[drop : self._n].copy()
        self._b0, self._n = self._b0 + drop, self._n - drop

    def _index(self, t: float) -> int:
        return min(self._n, max(0, round(t * SAMPLE_RATE) - self._b0))


def iter_chunks(
    blocks: Iterable[Float32Array], detector: Detector, max_chunk_s: float = 25.0, **kwargs: float
) -> Iterator[Chunk]:
    """Chunks of a block stream; see ``StreamChunker`` for the keyword arguments."""
    return StreamChunker(detector, max_chunk_s, **kwargs).chunks(blocks)
