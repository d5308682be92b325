"""The CPU fast paths on tiny local models: which paths the settings allow, the start-up
measurement that picks among them (and its cache), the agreement of every pickable pair with
fp32, the exactness of the fp32 export and of the bf16 conv's rewritten layers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from shared.speech.device import (
    CONV_PATHS,
    TRANSFORMER_PATHS,
    ComputeChoices,
    DeviceConfigError,
    cpu_threads,
    resolve_choices,
)
from shared.speech.engines.base import SAMPLE_RATE, DecodeOptions
from shared.speech.engines.wav2vec2.engine import Wav2Vec2Engine
from shared.speech.engines.wav2vec2.stages import ChannelsLastConv, UnfoldConv
from shared.speech.engines.wav2vec2.tuning import measure
from shared.speech.tuning import TuningCache, fastest
from tests.conftest import SHARED_DATA
from tests.tiny_models import build_tiny_wav2vec2

CPU = torch.device("cpu")
ALL = ComputeChoices(CONV_PATHS, TRANSFORMER_PATHS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wav2vec2(tmp_path_factory.mktemp("fast-path-model"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """The team's real clips, peak-normalised; seeded noise bursts where they are missing."""
    paths = sorted(SHARED_DATA.glob("*.wav"))
    if not paths:
        rng = np.random.default_rng(3)
        return [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (16_000, 40_000)]
    out = []
    for path in paths:
        audio, rate = sf.read(path, dtype="float32")
        if rate != SAMPLE_RATE:  # a few clips are 22.05 kHz; resampling is not under test
            continue
        out.append(audio / max(float(np.abs(audio).max()), 1e-9))
    return out


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Wav2Vec2Engine:
    return Wav2Vec2Engine(str(model_dir), device="cpu", precision="fp32", runtime="torch")


def pinned(monkeypatch: pytest.MonkeyPatch, conv: str, transformer: str) -> None:
    """Leave the engine one path per half, as the measurement would after choosing them."""
    only = ComputeChoices((conv,), (transformer,))
    monkeypatch.setattr("shared.speech.engines.wav2vec2.engine.resolve_choices", lambda *_a: only)


# --- which paths the settings allow -----------------------------------------------------------


def test_auto_measures_every_path_on_cpu() -> None:
    assert resolve_choices("auto", "auto", CPU) == ALL
    assert ALL.only() is None
    assert "onnx-int8" not in CONV_PATHS  # conv int8 fails the accuracy check


def test_settings_narrow_what_is_measured() -> None:
    assert resolve_choices("auto", "int8", CPU) == ComputeChoices(CONV_PATHS, ("onnx-int8",))
    onnx = resolve_choices("onnx", "auto", CPU)
    assert onnx.transformer == ("onnx-fp32", "onnx-int8") and onnx.conv == CONV_PATHS
    torch_only = resolve_choices("torch", "auto", CPU)
    assert all(p.startswith("torch") for p in torch_only.conv + torch_only.transformer)
    assert resolve_choices("onnx", "fp32", CPU) == ComputeChoices(
        ("onnx-fp32", "torch-fp32"), ("onnx-fp32",)
    )


def test_fp32_and_bf16_force_one_path() -> None:
    exact = resolve_choices("auto", "fp32", CPU).only()
    assert exact is not None and (exact.conv, exact.transformer) == ("torch-fp32", "torch-fp32")
    bf16 = resolve_choices("torch", "bf16", CPU).only()
    assert bf16 is not None and (bf16.conv, bf16.transformer) == ("torch-bf16", "torch-bf16")


def test_impossible_choices_stop_start_up() -> None:
    cuda = torch.device("cuda")
    for runtime, precision, device in [
        ("torch", "int8", CPU),
        ("onnx", "bf16", CPU),
        ("onnx", "auto", cuda),
        ("auto", "int8", cuda),
        ("tensorrt", "auto", CPU),
        ("auto", "int4", CPU),
    ]:
        with pytest.raises(DeviceConfigError):
            resolve_choices(runtime, precision, device)


def test_without_onnx_packages_auto_measures_torch_only() -> None:
    choices = resolve_choices("auto", "auto", CPU, onnx_ok=False)
    assert choices.conv == ("torch-fp32", "torch-bf16")
    assert choices.transformer == ("torch-fp32", "torch-bf16")
    with pytest.raises(DeviceConfigError, match="STT_RUNTIME=torch"):
        resolve_choices("onnx", "auto", CPU, onnx_ok=False)


def test_cpu_threads() -> None:
    assert cpu_threads(3) == 3 and cpu_threads(0) >= 1


# --- the measurement ---------------------------------------------------------------------------


def test_fastest_picks_the_quickest_and_abandons_a_slow_path() -> None:
    calls = {"slow": 0, "fast": 0}

    def run(name: str, seconds: float):  # noqa: ANN202
        def go() -> None:
            calls[name] += 1
            time.sleep(seconds)

        return go

    timing = fastest({"fast": run("fast", 0.002), "slow": run("slow", 0.03)})
    assert timing.best == "fast" and set(timing.seconds) == {"fast", "slow"}
    # Each warmed up and timed once; the slow one abandoned, the fast one is left alone and
    # not timed again.
    assert calls == {"fast": 2, "slow": 2}
    calls.update(fast=0, slow=0)
    close = fastest({"a": run("fast", 0.002), "b": run("slow", 0.002)}, warm=("a",))
    assert set(close.seconds) == {"a", "b"}
    assert calls == {"fast": 3, "slow": 4}  # neither abandoned; "a" was warm: no warm-up


def test_a_path_that_strays_on_the_probe_is_dropped() -> None:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((1, 50, 8)).astype(np.float32)
    logits = rng.standard_normal((1, 50, 5)).astype(np.float32)

    def build(component: str, path: str):  # noqa: ANN202
        if component == "conv":
            return lambda _v: features * (3.0 if path == "torch-bf16" else 1.0)
        return lambda _f: -logits if path == "onnx-int8" else logits

    plan, record = measure(ALL, build, np.zeros((1, 16_000), np.float32))
    assert set(record["dropped"]) == {"conv torch-bf16", "transformer onnx-int8"}
    assert plan.conv != "torch-bf16" and plan.transformer != "onnx-int8"
    assert plan.how == "measured" and record["cpu"]


def test_the_measured_choice_is_cached_per_cpu_and_threads(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnx")
    first = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path)
    assert first.plan.how == "measured" and "(measured)" in (first.info.compute or "")
    records = list(tmp_path.glob("*/tuning-*.json"))
    assert len(records) == 1

    def no_measuring(*_args: object) -> None:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr("shared.speech.engines.wav2vec2.tuning.measure", no_measuring)
    again = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path)
    assert again.plan.how == "cached"
    assert (again.plan.conv, again.plan.transformer) == (first.plan.conv, first.plan.transformer)
    monkeypatch.undo()
    monkeypatch.setattr("shared.speech.engines.wav2vec2.engine.cpu_model", lambda: "Another CPU")
    assert Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path).plan.how == "measured"
    Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path, threads=1)
    assert len(list(tmp_path.glob("*/tuning-*.json"))) == 3


def test_a_forced_path_measures_nothing(model_dir: Path, tmp_path: Path) -> None:
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", precision="fp32", cache_dir=tmp_path)
    assert engine.plan.how == "fixed" and engine.stages is None  # the model's own forward
    assert not list(tmp_path.glob("**/tuning-*.json"))


def test_a_damaged_cache_entry_is_measured_again(model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path)
    (record,) = tmp_path.glob("*/tuning-*.json")
    record.write_text('{"conv": "onnx-int8", "transformer": "torch-fp32"}')  # not allowed
    assert Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=tmp_path).plan.how == "measured"
    assert TuningCache(record.parent).load(record.stem[len("tuning-") :])["conv"] in CONV_PATHS


# --- what every pickable pair computes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("conv", "transformer"),
    [
        ("onnx-fp32", "onnx-int8"),
        ("torch-bf16", "onnx-int8"),
        ("torch-bf16", "torch-bf16"),
        ("torch-fp32", "torch-bf16"),
        ("onnx-fp32", "onnx-fp32"),
    ],
)
def test_every_pickable_pair_agrees_with_fp32(
    model_dir: Path,
    cache_dir: Path,
    reference: Wav2Vec2Engine,
    clips: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    conv: str,
    transformer: str,
) -> None:
    pytest.importorskip("onnx")
    pinned(monkeypatch, conv, transformer)
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    assert engine.stages is not None and (engine.plan.conv, engine.plan.transformer) == (
        conv,
        transformer,
    )
    same = frames = 0
    for clip in clips:
        ours, ref = engine.logits([clip])[0], reference.logits([clip])[0]
        assert ours.shape == ref.shape
        same += int((ours.argmax(-1) == ref.argmax(-1)).sum())
        frames += len(ref)
    assert same / frames >= 0.95, f"frame agreement {same / frames:.2%}"


def test_onnx_fp32_export_is_exact(
    model_dir: Path,
    cache_dir: Path,
    reference: Wav2Vec2Engine,
    clips: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("onnx")
    pinned(monkeypatch, "onnx-fp32", "onnx-fp32")
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    for clip in clips:
        ours, ref = engine.logits([clip])[0], reference.logits([clip])[0]
        np.testing.assert_allclose(ours, ref, atol=1e-3)
        options = DecodeOptions()
        assert engine.decode(ours, options).text == reference.decode(ref, options).text


@pytest.mark.parametrize(("kernel", "stride", "channels"), [(10, 5, 1), (3, 2, 16), (2, 2, 16)])
def test_the_bf16_conv_layers_compute_the_same_convolution(
    kernel: int, stride: int, channels: int
) -> None:
    """Checked in fp32, where only the layout changes: the rewrite itself must be exact."""
    torch.manual_seed(kernel)
    conv = torch.nn.Conv1d(channels, 24, kernel, stride=stride, bias=True)
    rewritten = UnfoldConv(conv) if channels == 1 else ChannelsLastConv(conv)
    audio = torch.randn(2, channels, 997)
    with torch.inference_mode():
        torch.testing.assert_close(rewritten(audio), conv(audio), atol=1e-5, rtol=1e-5)


def test_exports_are_cached_and_torch_copies_freed(
    model_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnx")
    pinned(monkeypatch, "onnx-fp32", "onnx-int8")
    Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)  # exported (or cached)

    def no_export(*_args: object) -> None:
        raise AssertionError("exported again despite the cache")

    monkeypatch.setattr("shared.speech.engines.wav2vec2.onnx_export.export_onnx", no_export)
    monkeypatch.setattr("shared.speech.engines.wav2vec2.onnx_export.quantize_int8", no_export)
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    assert all(p.is_meta for p in engine.model.wav2vec2.encoder.parameters())
    assert all(p.is_meta for p in engine.model.wav2vec2.feature_extractor.parameters())
    pinned(monkeypatch, "torch-fp32", "onnx-int8")
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    assert not any(p.is_meta for p in engine.model.wav2vec2.feature_extractor.parameters())


def test_layer_norm_model_batches_without_padding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The split halves take no attention mask, so only equal lengths may share a call."""
    pytest.importorskip("onnx")
    layer_dir = build_tiny_wav2vec2(tmp_path / "layer", layer_norm=True, seed=1)
    ref = Wav2Vec2Engine(str(layer_dir), device="cpu", precision="fp32", runtime="torch")
    pinned(monkeypatch, "onnx-fp32", "onnx-fp32")
    engine = Wav2Vec2Engine(
        str(layer_dir), device="cpu", batch_size=4, cache_dir=tmp_path / "cache"
    )
    assert not engine.pads
    rng = np.random.default_rng(5)
    chunks = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (16_000, 9_000, 16_000)]
    for ours, theirs in zip(engine.logits(chunks), ref.logits(chunks), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
