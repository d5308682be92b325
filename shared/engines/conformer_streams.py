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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BLOCK_FRAMES = 43
OUTPUTS_PER_BLOCK = 10
SUBSAMPLING = 4
FEATURE_SHIFT_S = 0.010

# One graph call: (chunk [B,43,80], offset [B,1], att_cache, cnn_cache) -> (out, att, cnn).
Step = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]
]


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

    def frame_times(self, count: int) -> np.ndarray:
        """Start time in seconds of each CTC output frame, on the stream's own timeline."""
        t = np.arange(count)
        step, within = t // OUTPUTS_PER_BLOCK, t % OUTPUTS_PER_BLOCK
        return (self.hop * step + SUBSAMPLING * within) * FEATURE_SHIFT_S


LAYOUTS = {"sdk": Layout("sdk", 43), "wenet": Layout("wenet", 40)}


def _block(features: np.ndarray, layout: Layout, index: int) -> np.ndarray:
    """Block ``index`` of one stream, zero-padded at the end as the SDK pads its last block."""
    start = index * layout.hop
    block = features[start : start + BLOCK_FRAMES]
    if len(block) < BLOCK_FRAMES:
        pad = np.zeros((BLOCK_FRAMES - len(block), features.shape[1]), np.float32)
        block = np.concatenate([block, pad])
    return block


def run_streams(
    features: list[np.ndarray],
    layout: Layout,
    step: Step,
    cache_shapes: tuple[tuple[int, ...], tuple[int, ...]],
    rows: int | None = None,
) -> list[np.ndarray]:
    """CTC log-probabilities per stream (``frames x units``), all streams in one batch.

    ``rows`` fixes the batch dimension (a GPU likes one shape); spare rows copy stream 0.
    """
    count = len(features)
    if count == 0:
        return []
    rows = max(rows or count, count)
    steps = [layout.blocks(len(f)) for f in features]
    att = np.zeros((rows, *cache_shapes[0]), np.float32)
    cnn = np.zeros((rows, *cache_shapes[1]), np.float32)
    outputs: list[list[np.ndarray]] = [[] for _ in features]
    for k in range(max(steps)):
        live = [i for i in range(count) if k < steps[i]]
        # Each row's source stream: itself while live, else a live stream (same inputs, so the
        # per-tensor quantization scale is what the live streams alone would give).
        source = [i if i in live else live[0] for i in range(count)] + [live[0]] * (rows - count)
        chunk = np.stack([_block(features[s], layout, k) for s in source])
        offset = np.full((rows, 1), OUTPUTS_PER_BLOCK * k, dtype=np.int64)
        out, new_att, new_cnn = step(chunk, offset, att[source], cnn[source])
        att, cnn = new_att, new_cnn
        for i in live:
            keep = OUTPUTS_PER_BLOCK if k < steps[i] - 1 else layout.last_outputs(len(features[i]))
            outputs[i].append(out[i, :keep])
    return [np.concatenate(parts).astype(np.float32, copy=False) for parts in outputs]
