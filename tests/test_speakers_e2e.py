"""Who said what through the API, the queue and a real worker process: two-channel calls
(named channels, mixed down on request, fake stereo, a silent channel, six channels), opt-in
diarization (a conversation, a one-second clip), the bad speaker options refused at the door,
and one real two-channel call through the Conformer, where no word may be heard twice."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shared.speech.engines.base import SAMPLE_RATE
from shared.webhook_signing import verify
from tests.conftest import (
    Stack,
    make_stack,
    serve_app,
    start_worker,
    stop_worker,
    wait_for_worker,
)
from tests.conversations import Conversation, conversation
from tests.test_e2e import submit_file, wait_job
from tests.test_webhooks import NEW_SECRET, WEBHOOK_ENV
from tests.webhook_receivers import Receiver


def _running(stack: Stack, log: Path) -> Iterator[object]:
    from api.app import create_app

    proc: subprocess.Popen = start_worker(stack, log)
    try:
        wait_for_worker(stack, proc, log)
        yield create_app(stack.settings).test_client()
    finally:
        stop_worker(proc)


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_model_dir, speaker_cache) -> Iterator[object]:
    root = tmp_path_factory.mktemp("speakers-stack")
    stack = make_stack(
        "sqlite", root, tiny_model_dir, STT_MODEL_CACHE_DIR=str(speaker_cache), **WEBHOOK_ENV
    )
    yield from _running(stack, root / "worker.log")


@pytest.fixture(scope="module")
def call() -> Conversation:
    return conversation("VF", 8, seed=3)


def _wav(path: Path, audio: np.ndarray) -> Path:
    sf.write(path, audio, SAMPLE_RATE)
    return path


def _done(client, path: Path, **fields: str) -> dict:
    job = wait_job(client, submit_file(client, path, **fields)["id"], timeout=180)
    assert job["status"] == "completed", job
    return job


def _document(client, job: dict) -> dict:
    return client.get(f"/v1/jobs/{job['id']}/transcript?format=json").get_json()


def test_a_two_channel_call_is_transcribed_per_channel(client, call, tmp_path):
    job = _done(client, _wav(tmp_path / "call.wav", call.call(-25)), channel_names="agent,customer")
    assert job["speakers"]["mode"] == "channels" and job["speakers"]["count"] == 2
    assert job["speakers"]["labels"] == ["agent", "customer"]
    doc = _document(client, job)
    assert doc["utterances"] and {u["channel"] for u in doc["utterances"]} <= {0, 1}
    for u in doc["utterances"]:
        assert u["speaker"] == ("agent", "customer")[u["channel"]]
        assert all(w["channel"] == u["channel"] for w in u["words"])
    assert all("speaker" in w for s in doc["segments"] for w in s["words"])
    starts = [u["start"] for u in doc["utterances"]]
    assert starts == sorted(starts)
    txt = client.get(f"/v1/jobs/{job['id']}/transcript").get_data(as_text=True)
    assert all(line.startswith(("agent: ", "customer: ")) for line in txt.splitlines())
    assert "<v agent>" in client.get(f"/v1/jobs/{job['id']}/transcript?format=vtt").get_data(
        as_text=True
    ) or "<v customer>" in client.get(f"/v1/jobs/{job['id']}/transcript?format=vtt").get_data(
        as_text=True
    )


def test_a_call_s_webhook_carries_who_said_what(client, call, tmp_path):
    """A support-log system fed by webhooks gets the turns, not one run-together text."""
    hook = Receiver().start()
    try:
        path = _wav(tmp_path / "hooked.wav", call.call(-25))
        job = _done(client, path, channel_names="agent,customer", callback_url=hook.url)
        [got] = hook.wait_for(1, timeout=60)
    finally:
        hook.stop()
    data = verify(got.headers, got.body, NEW_SECRET)["data"]
    doc = _document(client, job)
    assert data["speakers"] == job["speakers"]
    assert [u["text"] for u in data["utterances"]] == [u["text"] for u in doc["utterances"]]
    assert {u["speaker"] for u in data["utterances"]} <= {"agent", "customer"}
    assert all("words" not in u and u["channel"] in (0, 1) for u in data["utterances"])


@pytest.mark.parametrize(
    ("channels", "fields", "note"),
    [
        ("call", {"multichannel": "false"}, "mixed down"),
        ("same", {}, "same audio"),
        ("silent", {}, "silent"),
        ("six", {}, "6 channels mixed down"),
    ],
)
def test_audio_that_is_not_a_two_party_call_takes_the_mono_path(
    client, call, tmp_path, channels, fields, note
):
    mono = call.mono
    audio = {
        "call": call.call(-25),
        "same": np.stack([mono, mono], 1),
        "silent": np.stack([mono, np.zeros_like(mono)], 1),
        "six": np.stack([mono * (0.5 + i / 10) for i in range(6)], 1),
    }[channels]
    job = _done(client, _wav(tmp_path / f"{channels}.wav", audio), **fields)
    assert job["speakers"]["mode"] == "none" and job["transcript"] is not None
    assert any(note in n for n in job["speakers"]["notes"]), job["speakers"]
    assert "utterances" not in _document(client, job)


def test_diarization_labels_a_conversation(client, call, tmp_path):
    job = _done(client, _wav(tmp_path / "conv.wav", call.mono), diarize="true", num_speakers="2")
    speakers = job["speakers"]
    assert speakers["mode"] == "diarization" and speakers["labels"] == ["A", "B"], speakers
    doc = _document(client, job)
    assert [u["speaker"] for u in doc["utterances"]][:1] == ["A"]
    assert "channel" not in doc["utterances"][0]


def test_openais_diarized_json_answers_speaker_turns(client, call, tmp_path):
    """OpenAI's diarize call, from the official client over HTTP: one segment per turn, the
    speakers labelled A and B as OpenAI labels them; enrolled voices are refused."""
    openai = pytest.importorskip("openai")
    path = _wav(tmp_path / "conv.wav", call.mono)
    for url in serve_app(client.application):
        api = openai.OpenAI(base_url=f"{url}/v1", api_key="open", max_retries=0, timeout=180)
        with path.open("rb") as audio:
            answer = api.audio.transcriptions.create(
                model="gpt-4o-transcribe-diarize",
                file=audio,
                response_format="diarized_json",
                chunking_strategy="auto",
            )
        segments = answer.segments
        assert answer.task == "transcribe" and answer.usage.seconds == answer.duration > 0
        assert {s.speaker for s in segments} == {"A", "B"} and segments[0].speaker == "A"
        assert all(s.type == "transcript.text.segment" and s.text for s in segments)
        assert [s.start for s in segments] == sorted(s.start for s in segments)
        assert all(a.speaker != b.speaker for a, b in zip(segments, segments[1:], strict=False))
        assert len({s.id for s in segments}) == len(segments)
        with path.open("rb") as audio, pytest.raises(openai.BadRequestError) as refused:
            api.audio.transcriptions.create(
                model="gpt-4o-transcribe-diarize",
                file=audio,
                response_format="diarized_json",
                known_speaker_names=["Lan"],
                known_speaker_references=["data:audio/wav;base64,UklGRg=="],
            )
        assert refused.value.code == "invalid_request"
        assert refused.value.param == "known_speaker_names[]"


def test_diarization_of_a_one_second_clip_completes_with_a_note(client, call, tmp_path):
    job = _done(client, _wav(tmp_path / "short.wav", call.mono[:SAMPLE_RATE]), diarize="true")
    assert job["speakers"]["mode"] == "diarization" and job["speakers"]["count"] <= 1
    assert job["speakers"]["notes"], job["speakers"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"diarize": "true", "num_speakers": "0"}, "invalid_speaker_count"),
        ({"diarize": "true", "num_speakers": "1000000"}, "invalid_speaker_count"),
        ({"diarize": "true", "num_speakers": "two"}, "invalid_speaker_count"),
        ({"diarize": "true", "min_speakers": "4", "max_speakers": "2"}, "invalid_speaker_count"),
        ({"diarize": "true", "num_speakers": "2", "max_speakers": "3"}, "invalid_speaker_count"),
        ({"num_speakers": "2"}, "invalid_speaker_count"),
        ({"channel_names": "agent,customer,boss"}, "invalid_channel_names"),
        ({"channel_names": "agent,agent"}, "invalid_channel_names"),
        ({"diarize": "maybe"}, "invalid_request"),
    ],
)
def test_bad_speaker_options_are_refused_at_the_door(client, vi_clip, fields, code):
    with vi_clip.open("rb") as handle:
        response = client.post(
            "/v1/jobs",
            data={"file": (handle, vi_clip.name), **fields},
            content_type="multipart/form-data",
        )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_a_real_call_through_the_conformer_hears_each_word_once(
    tmp_path, conformer_model_dir, speaker_cache
):
    conv = conversation("VF", 8, seed=5)
    stack = make_stack(
        "sqlite",
        tmp_path,
        conformer_model_dir,
        STT_ENGINE="conformer",
        STT_MODEL_CACHE_DIR=str(speaker_cache),
    )
    for real in _running(stack, tmp_path / "worker.log"):
        job = _done(real, _wav(tmp_path / "call.wav", conv.call(-20)))
        doc = _document(real, job)
    voices = sorted(conv.tracks)
    words = [w for u in doc["utterances"] for w in u["words"]]
    assert len(words) > 40
    # every word overlaps a turn of its own channel's speaker: nothing heard through the leak
    for w in words:
        owners = [v for s, e, v in conv.turns if w["start"] < e + 0.3 and w["end"] > s - 0.3]
        assert voices[w["channel"]] in owners, (w, owners)
