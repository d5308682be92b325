"""The wav2vec2 engine on tiny local models: loading, baseline text, timing, batching, devices."""

from __future__ import annotations

import sys
import types
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

from shared.errors import ErrorCode, SttError
from shared.settings import load_settings
from shared.speech.device import (
    DeviceConfigError,
    resolve_device,
    resolve_precision,
)
from shared.speech.engines import load_engine
from shared.speech.engines.base import SAMPLE_RATE, DecodeOptions
from shared.speech.engines.model_card import card_license
from shared.speech.engines.wav2vec2.engine import Wav2Vec2Engine, plan_batches
from tests.tiny_models import build_tiny_wav2vec2

LENGTHS = (2 * SAMPLE_RATE, SAMPLE_RATE + 1234, 2 * SAMPLE_RATE, 7000, SAMPLE_RATE // 2)


@pytest.fixture(scope="module")
def group_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wav2vec2(tmp_path_factory.mktemp("w2v-group"))


@pytest.fixture(scope="module")
def layer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wav2vec2(tmp_path_factory.mktemp("w2v-layer"), layer_norm=True, seed=1)


@pytest.fixture(scope="module")
def engine(group_dir: Path) -> Wav2Vec2Engine:
    return Wav2Vec2Engine(str(group_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def chunks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


def test_loads_through_from_pretrained(engine: Wav2Vec2Engine, group_dir: Path) -> None:
    assert isinstance(engine.model, Wav2Vec2ForCTC) and not engine.model.training
    assert isinstance(engine.processor, Wav2Vec2Processor)
    assert engine.info.engine == "wav2vec2" and engine.info.model == str(group_dir)
    assert engine.info.device == "cpu" and engine.info.license == "cc-by-nc-4.0"
    assert engine.frame_s == pytest.approx(0.02) and engine.batch_size == 1 and not engine.pads


def test_license_argument_wins_and_missing_card_is_none(group_dir: Path, tmp_path: Path) -> None:
    explicit = Wav2Vec2Engine(str(group_dir), device="cpu", precision="fp32", license="mit")
    assert explicit.info.license == "mit"
    assert card_license(str(tmp_path)) is None
    assert card_license("khanhld/wav2vec2-base-vietnamese-160h") is None


def test_bad_model_path_is_model_load_failed(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(SttError) as info:
        Wav2Vec2Engine(missing, device="cpu")
    assert info.value.code == ErrorCode.MODEL_LOAD_FAILED
    assert missing in info.value.message and "STT_MODEL" in info.value.message


def test_missing_lm_fails_at_load(group_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SttError) as info:
        Wav2Vec2Engine(str(group_dir), device="cpu", lm_path=tmp_path / "lm.bin")
    assert info.value.code == ErrorCode.MODEL_LOAD_FAILED and "STT_LM_PATH" in info.value.message


def test_beam_with_kenlm_through_the_engine(
    group_dir: Path, tmp_path: Path, chunks: list[np.ndarray]
) -> None:
    lm = tmp_path / "tiny.arpa"
    lm.write_text(
        "\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t<s>\t-0.3\n-1.0\t</s>\n"
        "-2.0\t<unk>\n-0.5\tấ\t-0.3\n\n\\2-grams:\n-0.1\t<s> ấ\n\n\\end\\\n",
        encoding="utf-8",
    )
    engine = Wav2Vec2Engine(str(group_dir), device="cpu", precision="fp32", lm_path=lm)
    (result,) = engine.transcribe_batch(chunks[3:4], DecodeOptions(decoder="beam", beam_width=8))
    assert result.text and [w.text for w in result.segments[0].words] == result.text.split()


def test_greedy_equals_the_first_versions_pipeline(
    engine: Wav2Vec2Engine, group_dir: Path, chunks: list[np.ndarray]
) -> None:
    """processor -> model -> argmax -> batch_decode, as the first version did, gives our text."""
    processor = Wav2Vec2Processor.from_pretrained(str(group_dir))
    model = Wav2Vec2ForCTC.from_pretrained(str(group_dir)).eval()
    results = engine.transcribe_batch(chunks, DecodeOptions())
    for chunk, log_probs, result in zip(chunks, engine.logits(chunks), results, strict=True):
        with torch.no_grad():
            inputs = processor(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            baseline_ids = model(inputs.input_values).logits.argmax(dim=-1)
        assert np.array_equal(log_probs.argmax(axis=1), baseline_ids[0].numpy())
        baseline = processor.batch_decode(baseline_ids)[0]
        assert result.text == unicodedata.normalize("NFC", baseline) != ""
        assert result.text == unicodedata.normalize("NFC", result.text)


def test_words_are_ordered_inside_the_chunk(
    engine: Wav2Vec2Engine, chunks: list[np.ndarray]
) -> None:
    for chunk, result in zip(chunks, engine.transcribe_batch(chunks, DecodeOptions()), strict=True):
        duration = len(chunk) / SAMPLE_RATE
        (segment,) = result.segments
        words = segment.words
        assert [w.text for w in words] == result.text.split()
        assert 0.0 <= segment.start == words[0].start and segment.end == words[-1].end
        for word, following in zip(words, words[1:], strict=False):
            assert word.end <= following.start
        for word in words:
            assert 0.0 <= word.start < word.end <= duration
            assert word.confidence is not None and 0.0 <= word.confidence <= 1.0


def test_too_short_chunks_give_empty_results(engine: Wav2Vec2Engine) -> None:
    short = [np.zeros(0, np.float32), np.zeros(300, np.float32)]
    results = engine.transcribe_batch(short, DecodeOptions())
    assert [(r.text, r.segments) for r in results] == [("", []), ("", [])]


def test_beam_decoding_through_the_engine(engine: Wav2Vec2Engine, chunks: list[np.ndarray]) -> None:
    options = DecodeOptions(decoder="beam", beam_width=8, hotwords=("xin",))
    (result,) = engine.transcribe_batch(chunks[3:4], options)
    assert result.text and result.text == unicodedata.normalize("NFC", result.text)
    assert [w.text for w in result.segments[0].words] == result.text.split()
    with pytest.raises(SttError):
        engine.transcribe_batch(chunks[:1], DecodeOptions(decoder="nonsense"))


def test_plan_batches() -> None:
    lengths = [5, 9, 5, 7, 9, 9]
    assert plan_batches(lengths, 2, pad=True) == [[1, 4], [5, 3], [0, 2]]
    assert plan_batches(lengths, 2, pad=False) == [[1, 4], [5], [3], [0, 2]]
    assert plan_batches(lengths, 1, pad=True) == [[1], [4], [5], [3], [0], [2]]


@pytest.mark.parametrize("layer_norm", [True, False], ids=["padded-with-mask", "equal-lengths"])
def test_batched_equals_unbatched(
    layer_norm: bool,
    group_dir: Path,
    layer_dir: Path,
    chunks: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GPU batching path, forced on CPU: same frames, same argmax, same text per chunk."""
    model_dir = str(layer_dir if layer_norm else group_dir)
    one = Wav2Vec2Engine(model_dir, device="cpu", precision="fp32", batch_size=1)
    many = Wav2Vec2Engine(model_dir, device="cpu", precision="fp32", batch_size=4)
    assert many.pads is layer_norm
    calls: list[int] = []
    forward = many._forward

    def counting_forward(batch: list[np.ndarray], frames: list[int]) -> list[np.ndarray]:
        calls.append(len(batch))
        return forward(batch, frames)

    monkeypatch.setattr(many, "_forward", counting_forward)
    for single, batched in zip(one.logits(chunks), many.logits(chunks), strict=True):
        assert single.shape == batched.shape
        assert np.array_equal(single.argmax(axis=1), batched.argmax(axis=1))
        np.testing.assert_allclose(single, batched, atol=1e-4)
    assert max(calls) > 1  # the batched path really ran
    options = DecodeOptions()
    assert [r.text for r in one.transcribe_batch(chunks, options)] == [
        r.text for r in many.transcribe_batch(chunks, options)
    ]


def test_bf16_on_cpu_runs_bf16_copies(group_dir: Path, chunks: list[np.ndarray]) -> None:
    """On a CPU bf16 runs on bf16 copies of each half's weights (autocast re-casts them on
    every call); the fp32 originals are freed."""
    bf16 = Wav2Vec2Engine(str(group_dir), device="cpu", precision="bf16")
    assert (bf16.plan.conv, bf16.plan.transformer) == ("torch-bf16", "torch-bf16")
    assert bf16.stages is not None
    assert all(p.is_meta for p in bf16.model.wav2vec2.encoder.parameters())
    log_probs = bf16.logits(chunks[3:4])[0]
    assert log_probs.dtype == np.float32 and np.isfinite(log_probs).all()
    assert np.allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-3)


def test_resolve_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(DeviceConfigError, match="STT_DEVICE"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="cuda:99"):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(SttError, match="CUDA is not available") as info:
            resolve_device("cuda")
        assert info.value.code == ErrorCode.MODEL_LOAD_FAILED


def test_resolve_precision() -> None:
    """On a CPU ``auto`` is plain fp32 here: whether bf16 pays is measured per component, not
    read off the CPU's flags (see test_fast_path)."""
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("auto", cpu) is None
    with pytest.raises(DeviceConfigError, match="CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(DeviceConfigError, match="STT_PRECISION"):
        resolve_precision("int4", cpu)


def test_load_engine_builds_wav2vec2(group_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(model=str(group_dir), device="cpu", precision="fp32", var_dir=tmp_path)
    engine = load_engine(settings)
    assert isinstance(engine, Wav2Vec2Engine) and engine.info.license == "cc-by-nc-4.0"


def test_load_engine_imports_whisper_lazily(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, object] = {}

    class FakeWhisper:
        def __init__(self, model: str, device: str, compute_type: str, license: str | None):
            seen.update(model=model, device=device, compute_type=compute_type, license=license)

    fake = types.ModuleType("shared.speech.engines.whisper.engine")
    fake.WhisperEngine = FakeWhisper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shared.speech.engines.whisper.engine", fake)
    settings = load_settings(
        engine="whisper", model="tiny", device="cpu", precision="fp32", var_dir=tmp_path
    )
    assert isinstance(load_engine(settings), FakeWhisper)
    assert seen == {"model": "tiny", "device": "cpu", "compute_type": "float32", "license": None}
