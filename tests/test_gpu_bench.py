"""The GPU bench's batch-size choice, a pure function: what the table's "chosen" line rests on."""

from __future__ import annotations

import numpy as np

from bench.gpu import RATE, Row, choose_batch, cut, synthetic_speech


def row(batch: int, multiple: float, mb: float | None = None, lengths: str = "equal") -> Row:
    return Row("wav2vec2", "torch bf16", batch, multiple * 10.0, 10.0, mb, None, lengths)


def test_picks_the_best_multiple_within_the_budget() -> None:
    rows = [row(1, 100, 1000), row(8, 400, 3000), row(16, 600, 9000), row(32, 900, 20000)]
    assert choose_batch(rows, budget_mb=10_000) == 16
    assert choose_batch(rows, budget_mb=50_000) == 32


def test_a_gain_inside_the_tolerance_keeps_the_smaller_batch() -> None:
    rows = [row(8, 400, 3000), row(16, 500, 5000), row(32, 510, 9000)]
    assert choose_batch(rows, budget_mb=50_000) == 16
    assert choose_batch(rows, budget_mb=50_000, tolerance=0.0) == 32


def test_unknown_memory_fits_and_varied_rows_and_failures_are_ignored() -> None:
    rows = [row(1, 100), row(8, 300), row(64, 5000, lengths="varied 8-25 s")]
    rows.append(Row("conformer", "onnxruntime CUDA", 32, 100.0, 0.0))  # no wall time: not run
    assert choose_batch(rows, budget_mb=1) == 8


def test_nothing_fits() -> None:
    assert choose_batch([row(1, 100, 5000)], budget_mb=1000) is None
    assert choose_batch([], budget_mb=1000) is None


def test_cut_and_synthetic_audio_lengths() -> None:
    audio = synthetic_speech(30, np.random.default_rng(0))
    assert len(audio) >= 30 * RATE and audio.dtype == np.float32
    assert np.abs(audio).max() < 1.0
    pieces = cut(audio, [10.0, 2.5, 8.0])
    assert [len(p) for p in pieces] == [10 * RATE, int(2.5 * RATE), 8 * RATE]
    assert np.array_equal(pieces[1], audio[10 * RATE : int(12.5 * RATE)])
