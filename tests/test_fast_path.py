"""The CPU fast path (ONNX Runtime int8 transformer; conv encoder in ONNX Runtime fp32, or in
torch bf16 where the CPU has it) on tiny local models: plan resolution, exactness of the fp32
export, agreement of the fast path, the export cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from shared.speech.device import DeviceConfigError, cpu_has_native_bf16, cpu_threads, resolve_plan
from shared.speech.engines.base import SAMPLE_RATE, DecodeOptions
from shared.speech.engines.wav2vec2 import Wav2Vec2Engine
from tests.conftest import SHARED_DATA
from tests.tiny_models import build_tiny_wav2vec2

CPU = torch.device("cpu")
NATIVE_BF16 = torch.bfloat16 if cpu_has_native_bf16() else None


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


def test_plan_defaults_to_onnx_int8_on_cpu() -> None:
    plan = resolve_plan("auto", "auto", CPU)
    assert (plan.runtime, plan.onnx_variant, plan.dtype) == ("onnx", "int8", NATIVE_BF16)
    assert resolve_plan("auto", "int8", CPU) == plan
    assert resolve_plan("onnx", "fp32", CPU).dtype is None  # fp32 encoder too: exact export


def test_fp32_turns_every_reduced_precision_off() -> None:
    plan = resolve_plan("auto", "fp32", CPU)
    assert (plan.runtime, plan.dtype, plan.onnx_variant) == ("torch", None, None)
    assert resolve_plan("torch", "auto", CPU).dtype == NATIVE_BF16


def test_impossible_plans_stop_start_up() -> None:
    cuda = torch.device("cuda")
    for runtime, precision, device in [
        ("torch", "int8", CPU),
        ("onnx", "bf16", CPU),
        ("onnx", "auto", cuda),
        ("auto", "int8", cuda),
        ("tensorrt", "auto", CPU),
    ]:
        with pytest.raises(DeviceConfigError):
            resolve_plan(runtime, precision, device)


def test_without_onnx_packages_auto_falls_back_to_torch() -> None:
    assert resolve_plan("auto", "auto", CPU, onnx_ok=False).runtime == "torch"
    with pytest.raises(DeviceConfigError, match="STT_RUNTIME=torch"):
        resolve_plan("onnx", "auto", CPU, onnx_ok=False)


def test_cpu_threads() -> None:
    assert cpu_threads(3) == 3 and cpu_threads(0) >= 1


def test_onnx_fp32_export_is_exact(
    model_dir: Path, cache_dir: Path, reference: Wav2Vec2Engine, clips: list[np.ndarray]
) -> None:
    pytest.importorskip("onnx")
    engine = Wav2Vec2Engine(
        str(model_dir), device="cpu", precision="fp32", runtime="onnx", cache_dir=cache_dir
    )
    for clip in clips:
        ours, ref = engine.logits([clip])[0], reference.logits([clip])[0]
        np.testing.assert_allclose(ours, ref, atol=1e-3)
        assert (ours.argmax(-1) == ref.argmax(-1)).all()
        options = DecodeOptions()
        assert engine.decode(ours, options).text == reference.decode(ref, options).text


@pytest.fixture(params=[False, True], ids=["conv-in-onnx", "conv-in-torch-bf16"])
def native_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both CPU kinds on any machine: without native bf16 the whole model is one ONNX graph;
    with it (forced here; emulated bf16 is slow but exact enough) the conv stays in torch."""
    monkeypatch.setattr("shared.speech.device.cpu_has_native_bf16", lambda: request.param)
    return request.param


def test_fast_path_agrees_with_fp32(
    model_dir: Path,
    cache_dir: Path,
    reference: Wav2Vec2Engine,
    clips: list[np.ndarray],
    native_bf16: bool,
) -> None:
    pytest.importorskip("onnx")
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    assert engine.plan.runtime == "onnx" and engine.plan.onnx_variant == "int8"
    assert engine.onnx is not None and engine.onnx.takes_audio is not native_bf16
    same = frames = 0
    for clip in clips:
        ours, ref = engine.logits([clip])[0], reference.logits([clip])[0]
        assert ours.shape == ref.shape
        same += int((ours.argmax(-1) == ref.argmax(-1)).sum())
        frames += len(ref)
    assert same / frames >= 0.95, f"frame agreement {same / frames:.2%}"


def test_export_is_cached_and_torch_copy_freed(
    model_dir: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    pytest.importorskip("onnx")
    Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)  # exported (or cached)

    def no_export(*_args: object) -> None:
        raise AssertionError("exported again despite the cache")

    monkeypatch.setattr("shared.speech.engines.onnx_runtime.export_onnx", no_export)
    monkeypatch.setattr("shared.speech.engines.onnx_runtime.quantize_int8", no_export)
    engine = Wav2Vec2Engine(str(model_dir), device="cpu", cache_dir=cache_dir)
    assert all(p.is_meta for p in engine.model.wav2vec2.encoder.parameters())
    conv = list(engine.model.wav2vec2.feature_extractor.parameters())
    # the conv's torch copy survives only where torch runs it (bf16)
    assert all(p.is_meta is not native_bf16 for p in conv)


def test_layer_norm_model_batches_without_padding(tmp_path: Path) -> None:
    """The ONNX encoder takes no attention mask, so only equal lengths may share a call."""
    pytest.importorskip("onnx")
    layer_dir = build_tiny_wav2vec2(tmp_path / "layer", layer_norm=True, seed=1)
    engine = Wav2Vec2Engine(
        str(layer_dir),
        device="cpu",
        batch_size=4,
        runtime="onnx",
        precision="fp32",
        cache_dir=tmp_path / "cache",
    )
    ref = Wav2Vec2Engine(str(layer_dir), device="cpu", precision="fp32", runtime="torch")
    assert not engine.pads
    rng = np.random.default_rng(5)
    chunks = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (16_000, 9_000, 16_000)]
    for ours, theirs in zip(engine.logits(chunks), ref.logits(chunks), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
