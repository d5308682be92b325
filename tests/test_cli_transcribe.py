"""``stt transcribe`` as a user runs it (a child process on the real Conformer): who said what on
a two-channel call and with diarization, every transcript format, one file per input with
``--out``, and bad speaker options refused with the API's own codes before any audio is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from shared.speech.engines.base import SAMPLE_RATE
from tests.conversations import Conversation, conversation


@pytest.fixture(scope="module")
def call() -> Conversation:
    return conversation("VF", 8, seed=3)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, conformer_model_dir: Path, speaker_cache: Path
) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STT_")}
    return base | {
        "STT_ENGINE": "conformer",
        "STT_MODEL": str(conformer_model_dir),
        "STT_VAR_DIR": str(tmp_path_factory.mktemp("cli-var")),
        "STT_MODEL_CACHE_DIR": str(speaker_cache),
        "STT_ONNX_OPTIMIZATION": "basic",  # one path: nothing to measure at start-up
        "STT_PRECISION": "fp32",
    }


def stt(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stt_cli", "transcribe", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_a_two_channel_call_prints_who_said_what(env, call, tmp_path):
    path = tmp_path / "call.wav"
    sf.write(path, call.call(-25), SAMPLE_RATE)
    done = stt(env, path, "--channel-names", "agent,customer")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) >= 2 and all(line.split(":")[0] in ("agent", "customer") for line in lines)
    assert {line.split(":")[0] for line in lines} == {"agent", "customer"}
    document = json.loads(stt(env, path, "--format", "json").stdout)
    assert document["speakers"]["mode"] == "channels"
    assert {u["channel"] for u in document["utterances"]} == {0, 1}


def test_diarization_labels_a_mono_conversation(env, call, tmp_path):
    path = tmp_path / "conversation.wav"
    sf.write(path, call.mono, SAMPLE_RATE)
    done = stt(env, path, "--diarize", "--num-speakers", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["speakers"]["mode"] == "diarization"
    assert document["speakers"]["labels"] == ["A", "B"]
    assert {u["speaker"] for u in document["utterances"]} == {"A", "B"}


def test_formats_and_one_file_per_input(env, vi_clip, tmp_path):
    twin = tmp_path / "other" / vi_clip.name  # the same name in another folder
    twin.parent.mkdir()
    twin.write_bytes(vi_clip.read_bytes())
    out = tmp_path / "out"
    done = stt(env, vi_clip, twin, "--format", "srt", "--out", out)
    assert done.returncode == 0, done.stderr
    written = [Path(line) for line in done.stdout.splitlines()]
    assert len(set(written)) == 2 and all(p.parent == out and p.suffix == ".srt" for p in written)
    first = written[0].read_text(encoding="utf-8")
    assert first.startswith("1\n00:00:") and " --> " in first
    assert written[1].read_text(encoding="utf-8") == first
    vtt = stt(env, vi_clip, "--format", "vtt").stdout
    assert vtt.startswith("WEBVTT")
    spoken = stt(env, vi_clip, "--spoken").stdout.strip()
    assert spoken == spoken.lower() and "." not in spoken and spoken


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--num-speakers", "2"), "invalid_speaker_count"),  # counts need --diarize
        (("--diarize", "--min-speakers", "3", "--max-speakers", "2"), "invalid_speaker_count"),
        (("--diarize", "--num-speakers", "0"), "invalid_speaker_count"),
        (("--channel-names", "agent"), "invalid_channel_names"),
    ],
)
def test_bad_speaker_options_are_refused_with_a_stable_code(env, args, code, tmp_path):
    done = stt(env, tmp_path / "never-read.wav", *args)
    assert done.returncode == 2
    assert f"error {code}:" in done.stderr and "Traceback" not in done.stderr
