"""Chunk planning, the streaming chunker and result stitching.

Planning is checked as properties over random span lists. The streaming chunker runs twice:
with a fake detector that reads speech off the signal (exact, fast, so long streams and many
block sizes are cheap) and with real silero-vad over real Vietnamese clips joined by pauses
(synthetic tones are not reliably flagged as speech by silero, so they would prove nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.speech.chunking import Chunk, StreamChunker, iter_chunks, plan_chunks
from shared.speech.engines.base import SAMPLE_RATE, ChunkResult, Segment, Word
from shared.speech.stitching import keep_between, merge_results, shift_result, stitch
from shared.speech.vad import SpeechDetector

SR = SAMPLE_RATE
CLIPS = Path("/work/shared/data/vi-speech")
EPS = 1e-6


# --- plan_chunks ------------------------------------------------------------------------------


@st.composite
def span_lists(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float, float]:
    max_chunk = draw(st.sampled_from([5.0, 10.0, 25.0]))
    t, spans = draw(st.floats(0, 3)), []
    for _ in range(draw(st.integers(0, 30))):
        length = draw(st.one_of(st.floats(0.05, max_chunk), st.floats(0.05, 3 * max_chunk)))
        spans.append((t, t + length))
        t += length + draw(st.floats(0.01, 3))
    return spans, t + draw(st.floats(0, 2)), max_chunk


@settings(max_examples=300, deadline=None)
@given(span_lists())
def test_plan_properties(case: tuple[list[tuple[float, float]], float, float]) -> None:
    spans, total, max_chunk = case
    chunks = plan_chunks(spans, total, max_chunk, pad_s=0.2, overlap_s=1.0)
    long_spans = [(s, e) for s, e in spans if e - s > max_chunk]
    assert (not chunks) == (not spans)
    for s, e in chunks:
        assert 0 <= s < e <= total + EPS
        assert e - s <= max_chunk + EPS
    for (s1, e1), (s2, e2) in zip(chunks, chunks[1:], strict=False):
        assert s1 < s2
        if s2 < e1 - EPS:  # overlaps only between pieces of one over-long span
            assert any(ls - 0.2 - EPS <= s1 and e2 <= le + 0.2 + EPS for ls, le in long_spans)
    for s, e in spans:
        if e - s <= max_chunk:  # a span that fits is never cut
            assert any(cs - EPS <= s and e <= ce + EPS for cs, ce in chunks)
        else:  # an over-long one is covered by overlapping pieces
            inside = [c for c in chunks if c[0] < e and c[1] > s]
            assert inside[0][0] <= s + EPS and inside[-1][1] >= e - EPS
            assert all(b[0] < a[1] for a, b in zip(inside, inside[1:], strict=False))
    for cs, ce in chunks:  # cuts fall in pauses unless the span has no pause to cut at
        for edge in (cs, ce):
            assert not any(s + EPS < edge < e - EPS for s, e in spans if e - s <= max_chunk)


def test_plan_no_speech_and_padding() -> None:
    assert plan_chunks([], 100.0, 25.0) == []
    # a short pause gives half of itself to each side; the file edges give the full pad
    assert plan_chunks([(1.0, 10.0), (10.2, 30.0)], 40.0, 25.0) == [(0.8, 10.1), (10.1, 30.2)]


def test_plan_prefers_the_longest_pause() -> None:
    spans = [(0.0, 8.0), (8.2, 14.0), (15.5, 18.0), (18.1, 24.0), (24.2, 30.0)]
    chunks = plan_chunks(spans, 31.0, 25.0, pad_s=0.0)
    assert chunks[0] == (0.0, 14.0)  # the 1.5 s pause, not the 0.1 s one that would fit more


def test_plan_forced_split_overlaps() -> None:
    chunks = plan_chunks([(2.0, 62.0)], 64.0, 25.0, pad_s=0.2, overlap_s=1.0)
    assert len(chunks) == 3
    assert all(e - s <= 25.0 + EPS for s, e in chunks)
    assert chunks[0][0] == pytest.approx(1.8) and chunks[-1][1] == pytest.approx(62.2)
    for (_, e1), (s2, _) in zip(chunks, chunks[1:], strict=False):
        assert e1 - s2 == pytest.approx(1.0)


# --- streaming with an exact fake detector ------------------------------------------------------


class MaskDetector:
    """Speech wherever the signal is non-zero: exact spans, so chunker logic is tested alone."""

    def __init__(self) -> None:
        self.calls = 0

    def speech_spans(self, audio: np.ndarray, offset_s: float = 0.0) -> list[tuple[float, float]]:
        self.calls += 1
        on = np.concatenate([[0], (audio != 0).astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(on))
        return [(offset_s + a / SR, offset_s + b / SR) for a, b in edges.reshape(-1, 2)]


def bursts(seconds: float, seed: int, longest: float = 12.0) -> tuple[np.ndarray, list[tuple]]:
    """Random speech bursts (non-zero noise) separated by 0.2-3 s of exact silence."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * SR), dtype=np.float32)
    t, spans = 0.5, []
    while True:
        length = rng.uniform(0.3, longest)
        if t + length > seconds - 0.5:
            return audio, spans
        a, b = int(t * SR), int((t + length) * SR)
        audio[a:b] = rng.uniform(0.05, 0.5, b - a).astype(np.float32)
        spans.append((a / SR, b / SR))
        t += length + rng.uniform(0.2, 3.0)


def blocks_of(audio: np.ndarray, seconds: float) -> Iterator[np.ndarray]:
    step = int(seconds * SR)
    for i in range(0, audio.size, step):
        yield audio[i : i + step]


def check_chunks(chunks: list[Chunk], audio: np.ndarray, spans: list[tuple], max_s: float) -> None:
    for c in chunks:
        assert c.end_s - c.start_s <= max_s + EPS
        a = round(c.start_s * SR)
        assert np.array_equal(c.audio, audio[a : a + c.audio.size])  # times are global
    for c1, c2 in zip(chunks, chunks[1:], strict=False):
        assert c1.start_s < c2.start_s and c1.end_s <= c2.start_s + EPS
    for s, e in spans:  # every burst lies whole in one chunk
        assert any(c.start_s <= s + EPS and e <= c.end_s + EPS for c in chunks), (s, e)


def test_stream_cuts_do_not_depend_on_blocks() -> None:
    audio, spans = bursts(600.0, seed=1)
    runs = [list(iter_chunks(blocks_of(audio, size), MaskDetector(), 25.0)) for size in (30, 7.3)]
    runs.append(list(iter_chunks([audio], MaskDetector(), 25.0)))
    for chunks in runs:
        check_chunks(chunks, audio, spans, 25.0)
        assert [(c.start_s, c.end_s) for c in chunks] == [(c.start_s, c.end_s) for c in runs[0]]
    assert len(runs[0]) >= sum(e - s for s, e in spans) / 25.0


def test_stream_memory_is_bounded_by_window() -> None:
    """An hour streamed in 30 s blocks: the chunker never reads far ahead of what it emits."""
    audio, spans = bursts(3600.0, seed=2)
    pulled = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal pulled
        for block in blocks_of(audio, 30.0):
            pulled += block.size
            yield block

    chunker = StreamChunker(MaskDetector(), max_chunk_s=25.0)
    window = int(chunker.window_s * SR)
    chunks = []
    for chunk in chunker.chunks(counted()):
        assert pulled - chunk.end_s * SR <= window + 30 * SR
        chunks.append(chunk)
    assert chunker.peak_buffered_samples <= window <= 80 * SR
    assert chunker.consumed_s == pytest.approx(3600.0)
    check_chunks(chunks, audio, spans, 25.0)


def test_stream_forced_split_of_long_speech() -> None:
    audio = np.zeros(200 * SR, dtype=np.float32)
    audio[5 * SR : 150 * SR] = 0.3  # 145 s of speech without a pause
    chunks = list(iter_chunks(blocks_of(audio, 30.0), MaskDetector(), 25.0, overlap_s=1.0))
    assert all(c.end_s - c.start_s <= 25.0 + EPS for c in chunks)
    assert chunks[0].start_s <= 5.0 and chunks[-1].end_s >= 150.0
    for c1, c2 in zip(chunks, chunks[1:], strict=False):
        assert 0.5 <= c1.end_s - c2.start_s <= 1.0 + EPS  # overlapping, nothing lost between


# --- streaming with real silero-vad -----------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


@pytest.fixture(scope="module")
def speech_file(detector: SpeechDetector) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """~3 minutes of VIVOS clips (16 kHz) joined by 0.6-2 s pauses, with each clip's speech.

    One clip is placed across the 30 s and one across the 60 s block boundary.
    """
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(CLIPS.glob("vivos_*.wav"))]
    rng = np.random.default_rng(7)
    parts, speech, t = [], [], 0
    while t < 180 * SR:
        clip = clips[len(parts) // 2 % len(clips)]
        gap = int(rng.uniform(0.6, 2.0) * SR)
        for boundary in (30 * SR, 60 * SR):  # straddle the block boundary
            if t < boundary - clip.size // 2 < t + gap + clip.size:
                gap = boundary - clip.size // 2 - t
        parts += [np.zeros(gap, dtype=np.float32), clip]
        t += gap
        own = detector.speech_spans(clip, offset_s=t / SR)
        speech.append((own[0][0], own[-1][1]))
        t += clip.size
    return np.concatenate(parts), speech


def test_stream_real_speech(
    detector: SpeechDetector, speech_file: tuple[np.ndarray, list[tuple[float, float]]]
) -> None:
    audio, speech = speech_file
    chunker = StreamChunker(detector, max_chunk_s=25.0)
    chunks = list(chunker.chunks(blocks_of(audio, 30.0)))
    tol = 0.1  # VAD edges move by a frame or two with the window's start
    assert 6 <= len(chunks) <= 2 * audio.size / SR / 25.0  # on average at least half full
    for c in chunks:
        assert c.end_s - c.start_s <= 25.0 + EPS and c.audio.size > 0
        assert np.array_equal(c.audio, audio[round(c.start_s * SR) :][: c.audio.size])
    for c1, c2 in zip(chunks, chunks[1:], strict=False):
        assert c1.end_s <= c2.start_s + EPS
    for s, e in speech:  # each clip whole in one chunk, including those across 30 s and 60 s
        assert any(c.start_s - tol <= s and e <= c.end_s + tol for c in chunks), (s, e)
    assert chunker.peak_buffered_samples <= chunker.window_s * SR


def test_detector_keeps_torch_threads_and_offsets(detector: SpeechDetector) -> None:
    threads = torch.get_num_threads()
    clip = sf.read(CLIPS / "vivos_VIVOSDEV01_R044.wav", dtype="float32")[0]
    spans = detector.speech_spans(clip, offset_s=100.0)
    assert spans and 100.0 <= spans[0][0] < spans[-1][1] <= 100.0 + clip.size / SR + EPS
    assert detector.speech_spans(np.zeros(5 * SR, dtype=np.float32)) == []
    assert torch.get_num_threads() == threads


# --- results ------------------------------------------------------------------------------------


def result(words: list[tuple[str, float, float]]) -> ChunkResult:
    ws = [Word(t, s, e, 0.9) for t, s, e in words]
    return ChunkResult(
        " ".join(w.text for w in ws),
        [Segment(" ".join(w.text for w in ws), ws[0].start, ws[-1].end, ws)],
    )


def test_shift_result() -> None:
    shifted = shift_result(result([("xin", 0.1, 0.3), ("chào", 0.4, 0.8)]), 50.0)
    seg = shifted.segments[0]
    assert (seg.start, seg.end) == pytest.approx((50.1, 50.8))
    assert [t for w in seg.words for t in (w.start, w.end)] == pytest.approx(
        [50.1, 50.3, 50.4, 50.8]
    )


def test_stitch_drops_duplicated_overlap_words() -> None:
    # chunk 1 covers 0-10 s, chunk 2 covers 9-19 s; "năm" (9.3-9.6) and "sáu" (9.7-9.9) in both
    first = result([("một", 1.0, 1.4), ("năm", 9.3, 9.6), ("sáu", 9.7, 9.95)])
    second = result([("năm", 0.3, 0.6), ("sáu", 0.7, 0.9), ("bảy", 2.0, 2.3)])
    third = result([("tám", 0.5, 0.9)])  # 25-35 s, no overlap with the second chunk
    out = list(stitch([(0.0, 10.0, first), (9.0, 19.0, second), (25.0, 35.0, third)]))
    merged = merge_results(out)
    assert merged.text == "một năm sáu bảy tám"
    times = [w.start for s in merged.segments for w in s.words]
    assert times == sorted(times) and times[-1] == pytest.approx(25.5)
    assert out[2] == shift_result(third, 25.0)  # untouched when nothing overlaps


def test_keep_between_without_words() -> None:
    res = ChunkResult("a b", [Segment("a", 0.0, 1.0), Segment("b", 2.0, 3.0)])
    assert keep_between(res, 1.5, 10.0).text == "b"
    assert keep_between(ChunkResult("only text"), 0.0, 1.0).text == "only text"


# --- silero without torch -----------------------------------------------------------------------


def test_sequence_spans_equal_silero_own(detector: SpeechDetector) -> None:
    """Our torch-free run of silero's sequence model gives silero's spans, sample for sample,
    on every labelled clip (clean, noisy, telephone-like), with the service's parameters."""
    import silero_vad

    assert detector.backend == "onnx-sequence"
    model = silero_vad.load_silero_vad(sequence=True)
    checked = 0
    for path in sorted(CLIPS.glob("*.wav")):
        clip = sf.read(path, dtype="float32")[0]
        if clip.ndim != 1 or sf.info(path).samplerate != SR:
            continue
        theirs = silero_vad.get_speech_timestamps_sequence(
            clip, model, min_speech_duration_ms=250, min_silence_duration_ms=100,
            speech_pad_ms=30,
        )
        ours = detector.speech_spans(clip)
        assert [(s / SR, e / SR) for s, e in ((t["start"], t["end"]) for t in theirs)] == ours
        checked += 1
    assert checked >= 10


def test_conformer_transcription_never_imports_torch(
    tmp_path: Path, conformer_model_dir: Path
) -> None:
    """The Conformer runs in ONNX Runtime, and so does the VAD: a `stt transcribe` must not
    pay torch's import (about a second of every run) for nothing."""
    import subprocess
    import sys

    clip = CLIPS / "vivos_VIVOSDEV01_R044.wav"
    probe = (
        "import sys\n"
        "from stt_cli.main import main\n"
        f"rc = main(['transcribe', {str(clip)!r}])\n"
        "print('torch' in sys.modules, rc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STT_")}
    env |= {
        "STT_ENGINE": "conformer",
        "STT_MODEL": str(conformer_model_dir),
        "STT_VAR_DIR": str(tmp_path),
        "STT_ONNX_OPTIMIZATION": "basic",  # one path: nothing to measure at start-up
        "STT_PRECISION": "fp32",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False 0", out.stdout[-2000:]


def test_torchscript_fallback_finds_the_same_speech(detector: SpeechDetector) -> None:
    """Installs without onnxruntime fall back to silero's TorchScript model: same spans within a
    frame, and torch's thread pool handed back as it was."""
    jit = SpeechDetector(prefer_onnx=False)
    assert jit.backend == "jit"
    threads = torch.get_num_threads()
    clip = sf.read(CLIPS / "vivos_VIVOSDEV01_R044.wav", dtype="float32")[0]
    ours, theirs = detector.speech_spans(clip), jit.speech_spans(clip)
    assert len(ours) == len(theirs) > 0
    for (s1, e1), (s2, e2) in zip(ours, theirs, strict=True):
        assert abs(s1 - s2) <= 0.04 and abs(e1 - e2) <= 0.04
    assert torch.get_num_threads() == threads
