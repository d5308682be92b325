"""The Conformer CTC engine: features, the chunk loop, timing, decoding, and the SDK as oracle.

The model is the real one, assembled from the pinned ``viet-asr`` wheel (``conformer_model_dir``);
the vendor SDK from the same wheel (a dev dependency) decodes the same samples as the oracle.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from shared.speech.audio import iter_decoded
from shared.speech.ctc import greedy_decode
from shared.speech.device import DeviceConfigError, cpu_threads
from shared.speech.engines.base import DecodeOptions
from shared.speech.engines.conformer import engine as conformer_module
from shared.speech.engines.conformer.engine import ConformerEngine, onnx_providers
from shared.speech.engines.conformer.features import frame_count, log_mel, mel_bank, povey_window
from shared.speech.engines.conformer.gate import (
    ORACLE_MIN_SAME,
    candidates,
    path_lanes,
    path_name,
    split_path,
)
from shared.speech.engines.conformer.lanes import LanedSession
from shared.speech.engines.conformer.layernorm import fuse_layer_norms
from shared.speech.engines.conformer.positions import project_positions
from shared.speech.engines.conformer.quantize import int8_front_conv
from shared.speech.engines.conformer.session import (
    conv_precision,
    fold_conv_weights,
    session_device,
)
from shared.speech.engines.conformer.streams import LAYOUTS, iter_streams, run_streams
from shared.speech.textnorm import normalize, wer_cer
from shared.speech.tuning import cpu_family
from tests.conftest import ROOT

SHARED = ROOT.parent / "shared" / "data"
ALL_CLIPS = sorted((SHARED / "vi-speech").glob("*.wav")) + sorted(
    (SHARED / "vi-unlabelled").glob("*.wav")
)
SDK_BEAM = DecodeOptions(decoder="beam", beam_width=8)  # the SDK decodes with a prefix beam
ADMITTED = candidates(cpu_family(), ort.__version__, "auto").paths  # as this CPU's start-up
# One stream never splits into lanes: whole-clip paths differ only in level and precision.
ONE_STREAM_PATHS = tuple(dict.fromkeys(path_name(*split_path(p)) for p in ADMITTED))


def samples_16k(path: Path) -> np.ndarray:
    """Float samples at 16 kHz as the service decodes them, rounded to int16 like the SDK's."""
    audio = np.concatenate(list(iter_decoded(path, 600)))
    return np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def engine(conformer_model_dir: Path) -> ConformerEngine:
    return ConformerEngine(str(conformer_model_dir), "cpu", batch_size=1)


# --- features ---------------------------------------------------------------------------------


def test_mel_bank_matches_the_models_own_bank():
    bank = mel_bank()
    assert bank.shape == (257, 80)
    # Edges at floor(513 * hz / 16000): filters 1 and 6 have no weight at all (the SDK's bank
    # reads ln(1e-10) there), the others peak at exactly 1 on their centre bin.
    empty = [i for i in range(80) if not bank[:, i].any()]
    assert empty == [1, 6]
    assert bank.max(axis=0)[[0, 2, 40, 79]].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert bank.argmax(axis=0)[[0, 2, 28, 79]].tolist() == [1, 2, 32, 235]
    assert int((bank > 0).sum()) == 399


def test_features_of_a_sine_match_the_analytic_energy():
    t = np.arange(16_000) / 16_000
    features = log_mel(1000 * np.sin(2 * np.pi * 1000 * t))  # int16 range, not [-1, 1]
    assert features.shape == (98, 80) and frame_count(16_000) == 98
    assert int(features[10].argmax()) == 28  # the filter centred on bin 32 = 1000 Hz
    # |X| ~ A/2 * |1 - 0.97 e^-jw| * sum(window) at the sine's bin: the power in filter 28.
    emphasis = abs(1 - 0.97 * np.exp(-2j * np.pi * 1000 / 16_000))
    expected = np.log((1000 / 2 * emphasis * povey_window().sum()) ** 2)
    assert abs(features[10, 28] - expected) < 0.3
    assert features[10, 1] == pytest.approx(np.log(1e-10))  # an empty filter
    # Fixed reference values (float64 inside, float32 out), so a change of any step shows.
    assert features[10, 27:30].tolist() == pytest.approx(
        [20.339312, 21.420597, 19.682339], abs=1e-4
    )
    noise = log_mel(np.random.default_rng(0).integers(-3000, 3000, 4000).astype(np.int16))
    assert noise.shape == (23, 80)
    assert noise[3, [0, 2, 40, 79]].tolist() == pytest.approx(
        [11.524712, 13.449679, 20.364544, 22.534269], abs=1e-4
    )


# --- chunk loop -------------------------------------------------------------------------------


def test_layouts_count_blocks_and_time_frames():
    sdk, wenet = LAYOUTS["sdk"], LAYOUTS["wenet"]
    assert [sdk.blocks(n) for n in (1, 43, 44, 86, 100)] == [1, 1, 2, 2, 3]
    assert [sdk.last_outputs(n) for n in (1, 43, 44, 100)] == [1, 10, 1, 4]
    assert [wenet.blocks(n) for n in (43, 44, 83, 84)] == [1, 2, 2, 3]
    assert sdk.frame_times(12)[[9, 10, 11]].tolist() == pytest.approx([0.36, 0.43, 0.47])
    assert wenet.frame_times(12)[[9, 10, 11]].tolist() == pytest.approx([0.36, 0.40, 0.44])


def test_padding_a_shorter_stream_changes_no_streams_output(engine, vi_clip):
    features = log_mel(samples_16k(vi_clip).astype(np.float64))
    short = features[: 43 * 2]  # two whole blocks: the same inputs as the long stream's
    alone = run_streams([features], engine.layout, engine._step, engine.cache_shapes)[0]
    both = run_streams([features, short], engine.layout, engine._step, engine.cache_shapes)
    # The graph quantizes with one scale per tensor: zeros as padding would shift the long
    # stream's output once the short one ends. Copies of a live stream leave it exact.
    np.testing.assert_array_equal(both[0], alone)
    np.testing.assert_array_equal(both[1], alone[: len(both[1])])
    assert len(both[1]) == 20
    ragged = features[: 43 * 2 + 5]  # ceil(5 / 4) frames of a zero-padded third block
    free = run_streams([ragged], engine.layout, engine._step, engine.cache_shapes)[0]
    assert len(free) == 22
    fixed = run_streams([ragged], engine.layout, engine._step, engine.cache_shapes, rows=4)
    np.testing.assert_array_equal(fixed[0], free)  # the GPU's fixed batch shape, on CPU


def test_a_freed_row_takes_the_next_stream_from_its_own_start(engine, vi_clip):
    features = log_mel(samples_16k(vi_clip).astype(np.float64))
    alone = run_streams([features], engine.layout, engine._step, engine.cache_shapes)[0]
    # Two rows, three streams: the third enters row 1 when the short second one ends, two
    # steps in, so its offset (0) differs from row 0's (20) in the same call.
    streams = [features, features[: 43 * 2], features]
    ended = list(iter_streams(streams, engine.layout, engine._step, engine.cache_shapes, 2))
    assert [index for index, _ in ended] == [1, 0, 2]
    late = dict(ended)[2]
    assert late.shape == alone.shape
    # Rows share one quantization scale, so values move a little; with row 0's offset the
    # late stream's frames would disagree (about one in ten on this clip).
    assert (late.argmax(axis=1) == alone.argmax(axis=1)).all()
    vocab = engine.vocab
    assert greedy_decode(late, vocab).text == greedy_decode(alone, vocab).text


def test_chunks_stream_through_in_order_with_empty_ones_kept(conformer_model_dir, vi_clip):
    engine = ConformerEngine(str(conformer_model_dir), "cpu", batch_size=2)
    clip = samples_16k(vi_clip).astype(np.float32) / 32768
    other = samples_16k(ALL_CLIPS[0]).astype(np.float32) / 32768
    tiny = np.zeros(100, np.float32)  # shorter than one 25 ms frame
    chunks = [tiny, other, clip[: 16_000 * 2], tiny, clip, tiny]
    results = list(engine.transcribe_stream(iter(chunks), SDK_BEAM))
    texts = [r.text for r in results]
    assert texts[0] == texts[3] == texts[5] == ""
    assert texts[1] == engine.transcribe_batch([other], SDK_BEAM)[0].text
    assert texts[4] == engine.transcribe_batch([clip], SDK_BEAM)[0].text != texts[1]
    assert texts[2] and texts[4].startswith(texts[2].split()[0])


def test_concurrent_calls_share_graph_calls_and_get_their_own_results(conformer_model_dir):
    """The GPU worker's cross-job batching, forced on the CPU: two jobs' chunks in one batch."""
    shared = ConformerEngine(str(conformer_model_dir), "cpu", batch_size=4, shared=True)
    jobs = [
        [samples_16k(clip).astype(np.float32) / 32768 for clip in ALL_CLIPS[i : i + 3]]
        for i in (0, 5)
    ]
    alone = ConformerEngine(str(conformer_model_dir), "cpu", batch_size=4)
    expected = [[r.text for r in alone.transcribe_batch(job, SDK_BEAM)] for job in jobs]
    results: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = [r.text for r in shared.transcribe_stream(iter(jobs[i]), SDK_BEAM)]

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # Each job gets its own chunks back, in order. Rows of one call share a quantization
    # scale, so a near-tie word may flip with other batch-mates; the rest is identical.
    ours, theirs = sum(results, []), sum(expected, [])
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) >= 5
    assert wer_cer(theirs, ours)[0] <= 0.05
    assert shared.shared is not None and shared.shared.shared_calls > 0
    assert shared.shared.calls < sum(
        shared.layout.blocks(len(log_mel(c * 32768))) for job in jobs for c in job
    )


def test_the_rewritten_graph_computes_what_the_shipped_one_does(conformer_model_dir, vi_clip):
    """Above 'basic' the engine fuses the layer norms (73), reads the positional projections from
    tables (12 layers), folds conv weights and caches GLU outputs (12 modules): same
    frames, probabilities within float rounding amplified by the per-tensor quantization."""
    import onnx

    from shared.speech.engines.conformer.rewrite import cache_glu_outputs

    assert cache_glu_outputs(onnx.load(str(conformer_model_dir / "model.onnx"))) == 12
    assert fuse_layer_norms(onnx.load(str(conformer_model_dir / "model.onnx"))) == 73
    assert project_positions(onnx.load(str(conformer_model_dir / "model.onnx"))) == 12
    assert int8_front_conv(onnx.load(str(conformer_model_dir / "model.onnx")))  # for int8
    shipped = ConformerEngine(str(conformer_model_dir), "cpu", optimization="basic")
    fast = ConformerEngine(str(conformer_model_dir), "cpu", optimization="all")
    clips = [samples_16k(c).astype(np.float32) / 32768 for c in (vi_clip, ALL_CLIPS[-1])]
    for ours, theirs in zip(fast.logits(clips), shipped.logits(clips), strict=True):
        assert ours.shape == theirs.shape
        assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean() >= 0.99
        # A frame where a rounding difference moves a per-tensor quantization step can shift
        # probability between close tokens (0.04-0.44 on the shared clips before the layer-norm
        # and position rewrites, 0.04-0.46 after); such frames must stay rare.
        moved = np.abs(np.exp(ours) - np.exp(theirs)).max(axis=1)
        assert np.mean(moved > 0.05) <= 0.02 and moved.max() < 0.5
        assert greedy_decode(ours, fast.vocab).text == greedy_decode(theirs, fast.vocab).text
    int8 = ConformerEngine(str(conformer_model_dir), "cpu", precision="int8")
    for ours, theirs in zip(int8.logits(clips), shipped.logits(clips), strict=True):
        assert ours.shape == theirs.shape  # close, not equal: the input is quantized
        assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).mean() >= 0.97


def test_conv_weights_folded_out_of_dequantize_give_the_same_convolution(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, (8, 4, 3, 3), dtype=np.int8)
    scale = rng.uniform(0.001, 0.01, 8).astype(np.float32)
    zero = np.zeros(8, np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "scale", "zero"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((weight, "wq"), (scale, "scale"), (zero, "zero"))
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert fold_conv_weights(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert {t.name for t in model.graph.initializer} == {"w"}
    onnx.checker.check_model(model)
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)


def _session(model) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString())


def _layer_norm_model(rank: int):
    """A TensorFlow-style layer norm (two means, ``Reciprocal(Sqrt(var + eps))``, scale, shift)
    as the converted Conformer has it, over the last axis of a tensor of ``rank``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    shape = [2, 5, 6] if rank == 3 else [2, 5, 3, 6]
    ops = [
        ("GlobalAveragePool", ["x"], "mean"),
        ("Sub", ["x", "mean"], "diff"),
        ("Mul", ["diff", "diff"], "square"),
        ("GlobalAveragePool", ["square"], "var"),
        ("Add", ["var", "eps"], "var_eps"),
        ("Sqrt", ["var_eps"], "std"),
        ("Reciprocal", ["std"], "inv"),
        ("Mul", ["diff", "inv"], "norm"),
        ("Mul", ["norm", "gamma"], "scaled"),
        ("Add", ["scaled", "beta"], "y"),
    ]
    constants = {
        "eps": np.array(1e-3, np.float32),
        "gamma": rng.uniform(0.5, 2, (1, 1, 6)).astype(np.float32),
        "beta": rng.standard_normal((1, 1, 6)).astype(np.float32),
    }
    graph = helper.make_graph(
        [helper.make_node(op, inputs, [out]) for op, inputs, out in ops],
        "ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_decomposed_layer_norm_becomes_one_node_with_the_same_values():
    import onnx

    model = _layer_norm_model(rank=3)
    x = np.random.default_rng(3).standard_normal((2, 5, 6)).astype(np.float32) * 4 + 1
    before = _session(model).run(None, {"x": x})[0]
    assert fuse_layer_norms(model) == 1
    assert [n.op_type for n in model.graph.node] == ["LayerNormalization"]
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_session(model).run(None, {"x": x})[0], before, atol=1e-5)


def test_a_mean_over_more_than_the_last_axis_is_not_a_layer_norm():
    """On a 4-d tensor ``GlobalAveragePool`` averages two axes: fusing it would be wrong."""
    model = _layer_norm_model(rank=4)
    assert fuse_layer_norms(model) == 0 and len(model.graph.node) == 10


def test_positional_projections_read_from_a_table_equal_the_products():
    """Rows gathered from the int8 table, dequantized and multiplied by a dequantized weight,
    against rows gathered from the table multiplied once: per row, any indices."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)
    constants = {
        "table": rng.integers(-127, 128, (30, 8), dtype=np.int8),
        "table_scale": np.array(0.02, np.float32),
        "table_zero": np.array(0, np.int8),
        "w": rng.integers(-127, 128, (8, 5), dtype=np.int8),
        "w_scale": rng.uniform(0.001, 0.01, 5).astype(np.float32),
        "w_zero": np.zeros(5, np.int8),
    }
    nodes = [
        helper.make_node("Gather", ["table", "idx"], ["rows_q"], axis=0),
        helper.make_node("DequantizeLinear", ["rows_q", "table_scale", "table_zero"], ["rows"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["wf"], axis=1),
        helper.make_node("MatMul", ["rows", "wf"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pos",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [3, 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 1, 4, 5])],
        [numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    idx = rng.integers(0, 30, (3, 1, 4)).astype(np.int64)
    before = _session(model).run(None, {"idx": idx})[0]
    assert project_positions(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Gather"]
    assert [t.name for t in model.graph.initializer] == ["projected_positions_0"]
    onnx.checker.check_model(model)
    np.testing.assert_allclose(_session(model).run(None, {"idx": idx})[0], before, rtol=1e-5)


def _conv_model(in_ch: int, kernel: int, group: int, size: tuple[int, int], seed: int = 0):
    """A ``Relu -> Conv`` graph whose weights sit behind an int8 ``DequantizeLinear``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    out_ch = 8
    weight = rng.integers(-127, 128, (out_ch, in_ch // group, kernel, kernel), dtype=np.int8)
    tensors = {
        "wq": weight,
        "scale": rng.uniform(0.001, 0.01, out_ch).astype(np.float32),
        "zero": np.zeros(out_ch, np.int8),
        "bias": rng.standard_normal(out_ch).astype(np.float32),
    }
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("DequantizeLinear", ["wq", "scale", "zero"], ["w"], axis=0),
        helper.make_node("Conv", ["r", "w", "bias"], ["y"], strides=[2, 2], group=group),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, in_ch, *size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a, n) for n, a in tensors.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _dynamic_quantized(x: np.ndarray) -> np.ndarray:
    """``x`` after ONNX ``DynamicQuantizeLinear`` and back: what the int8 product sees."""
    low, high = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = (high - low) / 255
    zero = np.clip(np.round(-low / scale), 0, 255)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def test_the_int8_front_convolution_is_the_float_one_on_quantized_input():
    """Same windows, same channel order, same weights and bias: on the input the int8 product
    sees, the rewrite and the float convolution agree to float rounding, for any batch."""
    import onnxruntime as ort

    model = _conv_model(in_ch=6, kernel=3, group=1, size=(11, 13))
    shipped = ort.InferenceSession(model.SerializeToString())
    assert int8_front_conv(model)
    assert "Conv" not in [n.op_type for n in model.graph.node]
    rewritten = ort.InferenceSession(model.SerializeToString())
    x = np.random.default_rng(1).standard_normal((3, 6, 11, 13)).astype(np.float32)
    got = rewritten.run(None, {"x": x})[0]
    want = shipped.run(None, {"x": _dynamic_quantized(np.maximum(x, 0)).astype(np.float32)})[0]
    assert got.shape == want.shape == (3, 8, 5, 6)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_only_a_dense_three_by_three_convolution_is_taken_to_int8():
    depthwise = _conv_model(in_ch=8, kernel=3, group=8, size=(11, 13))
    pointwise = _conv_model(in_ch=6, kernel=1, group=1, size=(11, 13))
    assert not int8_front_conv(depthwise) and not int8_front_conv(pointwise)
    assert "Conv" in [n.op_type for n in depthwise.graph.node]


@pytest.fixture(scope="module")
def laned(conformer_model_dir: Path) -> LanedSession:
    from shared.speech.engines.conformer.session import make_session

    one_thread = make_session(
        conformer_model_dir / "model.onnx", ["CPUExecutionProvider"], 1, "basic"
    )
    return LanedSession(one_thread, 2)


def test_lanes_run_each_slice_of_rows_as_the_session_alone_would(laned: LanedSession) -> None:
    """Rows split into even slices, each slice's outputs where its rows were: a slice put back
    in the wrong place, or one run twice, would hand a stream another stream's caches."""
    from shared.speech.engines.conformer.tuning import _probe_feeds

    feeds = _probe_feeds(laned, 5)
    feeds["chunk"] = feeds["chunk"] * np.arange(1, 6, dtype=np.float32)[:, None, None]
    got = laned.run(None, feeds)
    alone = [
        laned.session.run(None, {k: v[a:b] for k, v in feeds.items()}) for a, b in [(0, 2), (2, 5)]
    ]
    for output, (first, second) in zip(got, zip(*alone, strict=True), strict=True):
        np.testing.assert_array_equal(output, np.concatenate([first, second]))
    single = {k: v[:1] for k, v in feeds.items()}
    np.testing.assert_array_equal(laned.run(None, single)[0], laned.session.run(None, single)[0])


def test_lanes_keep_running_in_a_forked_child(laned: LanedSession) -> None:
    """A prefork worker loads the engine, then forks: the parent's lane threads are not in the
    child, and work handed to them there would wait for ever."""
    import os
    import time

    from shared.speech.engines.conformer.tuning import _probe_feeds

    feeds = _probe_feeds(laned, 4)
    want = laned.run(None, feeds)[0]  # the parent's lane threads now exist
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's own exit status is the assertion
        same = np.array_equal(laned.run(None, feeds)[0], want)
        os._exit(0 if same else 1)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    if done[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
    assert done[0] == child and os.waitstatus_to_exitcode(done[1]) == 0


def test_precision_settings_for_the_conformer():
    """Only int8 forces the int8 convolution; auto leaves it to the accuracy gate."""
    assert not conv_precision("auto") and not conv_precision("FP32")
    assert conv_precision("int8") and conv_precision(" INT8 ")
    with pytest.raises(DeviceConfigError, match="auto, fp32 or int8"):
        conv_precision("bf16")


def test_onnx_providers_pick_cuda_only_where_it_exists():
    cpu_only, with_cuda = (
        ["CPUExecutionProvider"],
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert onnx_providers("auto", cpu_only) == (["CPUExecutionProvider"], "cpu")
    providers, device = onnx_providers("auto", with_cuda)
    assert device == "cuda:0" and providers[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert onnx_providers("cuda:1", with_cuda)[1] == "cuda:1"
    assert onnx_providers("cpu", with_cuda)[1] == "cpu"
    with pytest.raises(DeviceConfigError, match="onnxruntime-gpu"):
        onnx_providers("cuda", cpu_only)
    with pytest.raises(DeviceConfigError):
        onnx_providers("tpu", with_cuda)


class _FellBackSession:
    """A session whose CUDA provider failed to load: what ONNX Runtime reports then (no GPU
    here to make it happen for real)."""

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


def test_a_cuda_provider_that_did_not_start_is_not_reported_as_cuda():
    fell_back = _FellBackSession()
    with pytest.raises(DeviceConfigError, match="fell back to the CPU"):
        session_device(fell_back, "cuda:1", "cuda:1")
    assert session_device(fell_back, "cuda:0", "auto") == "cpu"
    assert session_device(fell_back, "cpu", "cpu") == "cpu"


def test_a_folder_without_the_streaming_signature_is_a_clear_load_error(tmp_path, tiny_model_dir):
    from shared.errors import SttError

    with pytest.raises(SttError, match="model.onnx and units.txt"):
        ConformerEngine(str(tmp_path), "cpu")


# --- decoding ---------------------------------------------------------------------------------


def test_greedy_and_beam_give_words_with_times_and_confidences(engine, vi_clip):
    audio = samples_16k(vi_clip).astype(np.float32) / 32768
    for options in (DecodeOptions(), SDK_BEAM):
        result = engine.transcribe_batch([audio], options)[0]
        words = result.segments[0].words
        assert " ".join(w.text for w in words) == result.text
        assert "▁" not in result.text and result.text == result.text.strip()
        starts = [w.start for w in words]
        assert starts == sorted(starts) and 0 <= starts[0] and words[-1].end <= len(audio) / 16e3
        assert all(0 < (w.confidence or 0) <= 1 for w in words)


def test_hotwords_reach_the_beam(engine, vi_clip):
    audio = samples_16k(vi_clip).astype(np.float32) / 32768
    plain = engine.transcribe_batch([audio], SDK_BEAM)[0].text
    boosted = DecodeOptions(decoder="beam", beam_width=8, hotwords=("kiến nghị",))
    assert "kiến nghị" in engine.transcribe_batch([audio], boosted)[0].text
    assert plain  # the clip is "cũng lên tiếng ủng hộ các kiến nghị này"


# --- the vendor SDK as oracle -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_texts() -> list[str]:
    vietasr = pytest.importorskip("vietasr")
    sdk = vietasr.Pipeline.preset("transcribe")
    return [sdk.transcribe(samples_16k(clip)).text.strip() for clip in ALL_CLIPS]


@pytest.mark.parametrize("path", ONE_STREAM_PATHS)
def test_our_engine_reproduces_the_sdk_on_every_shared_clip(conformer_model_dir, sdk_texts, path):
    """Every path the start-up measurement may pick on this CPU (the accuracy gate's verdict for
    its family), each clip whole, against the SDK, in one written form on both sides."""
    level, int8 = split_path(path)
    ours = ConformerEngine(
        str(conformer_model_dir),
        "cpu",
        layout="sdk",
        batch_size=1,
        optimization=level,
        precision="int8" if int8 else "fp32",
    )
    assert len(ALL_CLIPS) == 28, ALL_CLIPS
    mine = [
        ours.transcribe_batch([samples_16k(clip).astype(np.float32) / 32768], SDK_BEAM)[0].text
        for clip in ALL_CLIPS
    ]
    theirs = [normalize(t, numbers=True) for t in sdk_texts]
    same = sum(a == normalize(b, numbers=True) for a, b in zip(theirs, mine, strict=True))
    wer, _ = wer_cer(theirs, mine, numbers=True)
    assert same >= ORACLE_MIN_SAME and wer <= 0.02, (same, wer, mine)


def test_auto_optimization_is_measured_once_then_read(
    conformer_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.settings import load_settings

    assert load_settings().onnx_optimization == "auto"
    graphs = tmp_path / "onnx"
    graphs.mkdir()
    key = conformer_module.model_key(conformer_model_dir / "model.onnx")
    stale = [graphs / f"conformer-{key}-r1-{kind}.onnx" for kind in ("int8", "float")]
    for old in stale:
        old.write_bytes(b"a graph of an earlier rewrite")
    first = ConformerEngine(
        str(conformer_model_dir), "cpu", optimization="auto", tuning_dir=tmp_path, graph_dir=graphs
    )
    compute = first.info.compute or ""
    level = compute.split("optimization ", 1)[1].split(" ", 1)[0]
    lanes = 2 if ", 2 lanes" in compute else 1
    chosen_path = path_name(level, "front-end convolution int8" in compute, lanes)
    assert chosen_path in ADMITTED and f"(measured of {', '.join(ADMITTED)}; " in compute
    (record,) = tmp_path.glob("tuning-*.json")
    built = {split_path(p)[1] for p in ADMITTED if split_path(p)[0] in ("extended", "all")}
    for int8, old in zip((True, False), stale, strict=True):
        assert old.exists() != (int8 in built)  # a graph rebuilt replaces its earlier version
    assert set(json.loads(record.read_text())["path_ms"]) == set(ADMITTED)

    opened: list[tuple[str, int]] = []
    real = conformer_module.make_session

    def counting(model: Path, providers: list[object], threads: int, lvl: str, *rest):  # noqa: ANN002, ANN202
        opened.append((lvl, threads))
        return real(model, providers, threads, lvl, *rest)

    def no_rewrite(_model: object) -> None:
        raise AssertionError("the kept rewritten graph was built again")

    monkeypatch.setattr("shared.speech.engines.conformer.engine.make_session", counting)
    monkeypatch.setattr("shared.speech.engines.conformer.session.cache_glu_outputs", no_rewrite)
    again = ConformerEngine(
        str(conformer_model_dir), "cpu", optimization="auto", tuning_dir=tmp_path, graph_dir=graphs
    )
    lane_threads = max(1, cpu_threads() // path_lanes(chosen_path))  # lanes share the cores
    assert opened == [(level, lane_threads)]
    assert f"optimization {level} (cached of " in (again.info.compute or "")
    chosen = ConformerEngine(str(conformer_model_dir), "cpu", optimization="basic")
    assert "optimization basic (set)" in (chosen.info.compute or "")
