"""The chunk loop of a streaming Conformer CTC graph, for several independent streams at once.

The graph takes 43 log-mel frames per step plus two caches (attention and convolution) that
carry the left context, and returns 10 CTC frames (subsampling 4). Two layouts drive it:

- ``sdk``: non-overlapping blocks of 43 frames (hop 43), which is what the model's own SDK does;
  the 43rd frame of each block is not at a multiple of 4, so output times are uneven.
- ``wenet``: blocks every 40 frames whose last 3 frames are right context only (hop 40), the
  conventional WeNet streaming layout; output frames fall every 40 ms.

Streams run side by side in the batch dimension. The graph quantizes activations dynamically
with one scale per tensor, so every row of a step influences every other row: a stream that has
ended (or a row that fills a batch) is therefore fed a copy of a live stream's inputs, never
zeros, so that no stream's output depends on how long the others are.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import Float32Array

BLOCK_FRAMES = 43
OUTPUTS_PER_BLOCK = 10
SUBSAMPLING = 4
FEATURE_SHIFT_S = 0.010

# The graph's caches and outputs, in whatever float type the session computes.
GraphArray: TypeAlias = npt.NDArray[Any]
# One graph call: (chunk [B,43,80], offset [B,1], att_cache, cnn_cache) -> (out, att, cnn).
Step = Callable[
    [Float32Array, npt.NDArray[np.int64], GraphArray, GraphArray],
    tuple[GraphArray, GraphArray, GraphArray],
]
# What names a stream in a batch (the caller's choice; it comes back when the stream ends).
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    hop: int  # feature frames the loop advances per step

    def blocks(self, frames: int) -> int:
        """Steps a stream of ``frames`` feature frames needs (one at least, so none is lost)."""
        context = BLOCK_FRAMES - self.hop
        return max(1, -(-max(frames - context, 1) // self.hop))

    def last_outputs(self, frames: int) -> int:
        """CTC frames of the last step that belong to real audio, not to its zero padding."""
        real = min(frames - (self.blocks(frames) - 1) * self.hop, self.hop)
        return min(OUTPUTS_PER_BLOCK, max(0, -(-real // SUBSAMPLING)))

    def frame_times(self, count: int) -> npt.NDArray[np.float64]:
        """Start time in seconds of each CTC output frame, on the stream's own timeline."""
        t = np.arange(count)
        step, within = t // OUTPUTS_PER_BLOCK, t % OUTPUTS_PER_BLOCK
        return (self.hop * step + SUBSAMPLING * within) * FEATURE_SHIFT_S


LAYOUTS = {"sdk": Layout("sdk", 43), "wenet": Layout("wenet", 40)}


def _block(features: Float32Array, layout: Layout, index: int) -> Float32Array:
    """Block ``index`` of one stream, zero-padded at the end as the SDK pads its last block."""
    start = index * layout.hop
    block = features[start : start + BLOCK_FRAMES]
    if len(block) < BLOCK_FRAMES:
        pad = np.zeros((BLOCK_FRAMES - len(block), features.shape[1]), np.float32)
        block = np.concatenate([block, pad])
    return block


def run_streams(
    features: list[Float32Array],
    layout: Layout,
    step: Step,
    cache_shapes: tuple[tuple[int, ...], tuple[int, ...]],
    rows: int | None = None,
) -> list[Float32Array]:
    """CTC log-probabilities per stream (``frames x units``), all streams side by side.

    ``rows`` fixes the batch dimension (a GPU likes one shape); spare rows copy a live stream.
    """
    count = len(features)
    rows = max(rows or count, count, 1)
    outputs: list[Float32Array | None] = [None] * count
    for index, log_probs in iter_streams(features, layout, step, cache_shapes, rows, rows):
        outputs[index] = log_probs
    return [o for o in outputs if o is not None]


@dataclass(slots=True)
class _Slot(Generic[K]):
    """One batch row: the stream it runs, how far it has got and what it has produced."""

    key: K
    features: Float32Array
    steps: int
    done: int = 0
    parts: list[GraphArray] = field(default_factory=list)


class StreamBatch(Generic[K]):
    """Streams side by side in the batch dimension, each row with its own caches and offset.

    A stream may join between any two steps (its caches start from zero and its ``offset``
    from 0, which the graph reads per row) and leaves when its last block has run, so rows
    freed by short streams are taken by the next ones instead of idling until the longest
    stream of a fixed group ends. ``rows`` fixes the batch dimension (a GPU likes one shape);
    spare rows copy row 0, the same inputs, so the per-tensor quantization scale is what the
    live streams alone would give.
    """

    def __init__(
        self,
        layout: Layout,
        step: Step,
        cache_shapes: tuple[tuple[int, ...], tuple[int, ...]],
        rows: int | None = None,
    ) -> None:
        self.layout, self._step, self.rows = layout, step, rows
        self.live: list[_Slot[K]] = []
        self._att: GraphArray = np.zeros((0, *cache_shapes[0]), np.float32)
        self._cnn: GraphArray = np.zeros((0, *cache_shapes[1]), np.float32)

    def __len__(self) -> int:
        return len(self.live)

    def add(self, key: K, features: Float32Array) -> None:
        """Start a stream of at least one feature frame; ``key`` names it when it ends."""
        if len(features) == 0:
            raise ValueError(f"stream {key!r} has no feature frames")
        self.live.append(_Slot(key, features, self.layout.blocks(len(features))))
        self._att = np.concatenate([self._att, np.zeros((1, *self._att.shape[1:]), np.float32)])
        self._cnn = np.concatenate([self._cnn, np.zeros((1, *self._cnn.shape[1:]), np.float32)])

    def step(self) -> list[tuple[K, Float32Array]]:
        """One graph call for every live stream; ``(key, log-probabilities)`` of those that end."""
        live, layout = self.live, self.layout
        count = max(self.rows or len(live), len(live))
        source = list(range(len(live))) + [0] * (count - len(live))
        chunk = np.stack([_block(s.features, layout, s.done) for s in live])[source]
        offset = np.array([[OUTPUTS_PER_BLOCK * s.done] for s in live], np.int64)[source]
        out, att, cnn = self._step(
            chunk, offset, _rows(self._att, source), _rows(self._cnn, source)
        )
        for row, slot in enumerate(live):
            last = slot.done == slot.steps - 1
            keep = layout.last_outputs(len(slot.features)) if last else OUTPUTS_PER_BLOCK
            slot.parts.append(out[row, :keep].copy())  # not a view: frees the step's output
            slot.done += 1
        going = [row for row, slot in enumerate(live) if slot.done < slot.steps]
        ended = [s for s in live if s.done == s.steps]
        self.live, self._att, self._cnn = (
            [live[r] for r in going],
            _rows(att, going),
            _rows(cnn, going),
        )
        return [(s.key, np.concatenate(s.parts).astype(np.float32, copy=False)) for s in ended]


def _rows(array: GraphArray, rows: list[int]) -> GraphArray:
    """``array[rows]``, without the copy (tens of MB per step) when that is all of it."""
    if len(rows) == len(array) and rows == list(range(len(array))):
        return array
    return array[rows]


def iter_streams(
    features: Iterable[Float32Array],
    layout: Layout,
    step: Step,
    cache_shapes: tuple[tuple[int, ...], tuple[int, ...]],
    slots: int,
    rows: int | None = None,
) -> Iterator[tuple[int, Float32Array]]:
    """``(index, log-probabilities)`` of each stream as it ends, at most ``slots`` at a time.

    Streams are taken from ``features`` only as rows free up, which bounds memory by
    ``slots``, not by the file. Without ``rows`` the batch shrinks as the last streams end.
    """
    batch: StreamBatch[int] = StreamBatch(layout, step, cache_shapes, rows)
    pending = enumerate(features)
    while True:
        while len(batch) < slots and (item := next(pending, None)) is not None:
            batch.add(*item)
        if not batch:
            return
        for key, log_probs in batch.step():
            yield int(key), log_probs
