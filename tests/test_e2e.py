"""End to end through a real Celery worker process, on SQLite+filesystem broker and on
PostgreSQL+Redis: submit, let the worker transcribe with the tiny model, read the results."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.audio_factory import tone, write_audio
from tests.conftest import copy_clip

TERMINAL = {"completed", "failed", "canceled"}


def wait_job(client, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def submit_file(client, path: Path, **fields) -> dict:
    with path.open("rb") as handle:
        response = client.post(
            "/v1/jobs", data={"file": (handle, path.name), **fields},
            content_type="multipart/form-data",
        )
    assert response.status_code == 202, response.get_json()
    return response.get_json()


@pytest.fixture()
def ready(worker, client):
    return client


def test_upload_completes_with_transcript_and_processed_wav(ready, vi_clip, tmp_path, stack):
    mp3 = write_audio(tmp_path / "clip.mp3", _clip_audio(vi_clip), 16000, "mp3")
    job = wait_job(ready, submit_file(ready, mp3, metadata='{"ticket": 7}')["id"])
    assert job["status"] == "completed", job["error"]
    assert job["transcript"] and isinstance(job["transcript"], str)
    processed = Path(job["processed_path"])
    assert processed.exists() and processed.parent.name == job["id"]
    assert job["duration_s"] == pytest.approx(3.69, abs=0.15)
    assert job["model_id"] == stack.settings.model and job["engine"] == "wav2vec2"
    assert job["attempts"] == 1 and job["processing_s"] > 0 and job["progress"] == 100.0
    assert job["metadata"] == {"ticket": 7}
    import soundfile as sf

    info = sf.info(str(processed))
    assert info.samplerate == 16000 and info.channels == 1
    assert np.abs(sf.read(str(processed))[0]).max() == pytest.approx(1.0, abs=0.01)


def test_transcript_formats(ready, vi_clip):
    job = wait_job(ready, submit_file(ready, vi_clip)["id"])
    text = ready.get(f"/v1/jobs/{job['id']}/transcript")
    assert text.mimetype == "text/plain"
    assert text.get_data(as_text=True).strip() == job["transcript"]
    as_json = ready.get(f"/v1/jobs/{job['id']}/transcript?format=json").get_json()
    assert as_json["text"] == job["transcript"] and as_json["segments"]
    words = [w for s in as_json["segments"] for w in s["words"]]
    assert words and all(0 <= w["start"] <= w["end"] <= job["duration_s"] + 0.05 for w in words)
    srt = ready.get(f"/v1/jobs/{job['id']}/transcript?format=srt").get_data(as_text=True)
    assert srt.startswith("1\n") and " --> " in srt
    vtt = ready.get(f"/v1/jobs/{job['id']}/transcript?format=vtt").get_data(as_text=True)
    assert vtt.startswith("WEBVTT")
    bad = ready.get(f"/v1/jobs/{job['id']}/transcript?format=doc")
    assert bad.status_code == 400


def test_transcripts_are_written_and_keep_the_spoken_form(ready, vi_clip):
    """The written transcript is the default; every recognised word stays in the JSON with its
    time, and the written tokens cover those words exactly once, in order."""
    job = wait_job(ready, submit_file(ready, vi_clip)["id"])
    doc = ready.get(f"/v1/jobs/{job['id']}/transcript?format=json").get_json()
    assert doc["text"] == job["transcript"] and job["transcript"][-1] in ".?!"
    assert doc["spoken_text"] and doc["spoken_text"] == doc["spoken_text"].lower()
    words = [w["text"] for s in doc["segments"] for w in s["words"]]
    assert words == doc["spoken_text"].split()
    for seg in doc["segments"]:
        covered = [i for t in seg["tokens"] for i in range(t["first_word"], t["last_word"] + 1)]
        assert covered == list(range(len(seg["words"])))
        assert seg["text"] == " ".join(t["text"] for t in seg["tokens"])
        for token in seg["tokens"]:
            assert token["start"] == seg["words"][token["first_word"]]["start"]
            assert token["end"] == seg["words"][token["last_word"]]["end"]


def test_a_job_can_ask_for_the_spoken_form(ready, vi_clip):
    fields = {"punctuate": "false", "format_text": "false"}
    job = wait_job(ready, submit_file(ready, vi_clip, **fields)["id"])
    doc = ready.get(f"/v1/jobs/{job['id']}/transcript?format=json").get_json()
    assert job["transcript"] == doc["spoken_text"] and doc["segments"][0]["tokens"] == []
    no_marks = wait_job(ready, submit_file(ready, vi_clip, punctuate="0")["id"])
    assert not re.search(r"[.,?!]", no_marks["transcript"])
    bad = ready.post("/v1/jobs", json={"audio_path": "/x.wav", "punctuate": "maybe"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_request"
    assert "punctuate" in bad.get_json()["error"]["message"]


def test_readyz_names_the_formatting_models(ready):
    workers = ready.get("/readyz").get_json()["workers"]
    assert workers and all("vi-punct" in (w["formatting"] or "") for w in workers), workers


def test_two_jobs_never_share_a_processed_file(ready, vi_clip):
    ids = [submit_file(ready, vi_clip)["id"] for _ in range(2)]
    jobs = [wait_job(ready, i) for i in ids]
    assert jobs[0]["processed_path"] != jobs[1]["processed_path"]
    assert all(Path(j["processed_path"]).exists() for j in jobs)


def test_delete_finished_job_removes_its_files(ready, vi_clip):
    job = wait_job(ready, submit_file(ready, vi_clip)["id"])
    folder = Path(job["processed_path"]).parent
    assert ready.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert not folder.exists() and ready.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_server_path_job_keeps_the_original(ready, vi_clip, audio_root):
    original = copy_clip(vi_clip, audio_root)
    response = ready.post("/v1/jobs", json={"audio_path": str(original)})
    job = wait_job(ready, response.get_json()["id"])
    assert job["status"] == "completed"
    ready.delete(f"/v1/jobs/{job['id']}")
    assert original.exists()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("silence", "silent_audio"),
        ("too_long", "audio_too_long"),
        ("truncated_mp3", "undecodable_audio"),
        ("garbage_after_header", "undecodable_audio"),
    ],
)
def test_bad_audio_fails_the_job_with_its_code(ready, tmp_path, case, code):
    path = _bad_audio(tmp_path, case)
    job = wait_job(ready, submit_file(ready, path)["id"])
    assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert job["error"]["message"] and job["transcript"] is None


def test_legacy_route_keeps_its_contract(ready, vi_clip, audio_root):
    original = copy_clip(vi_clip, audio_root, "legacy.wav")
    for response in (
        ready.get(f"/wav2vec2?path={original}"),
        ready.post("/wav2vec2", data={"path": str(original)}),
        ready.post("/wav2vec2", data={"audio_path": str(original)}),
        ready.post(
            "/wav2vec2", data={"file": (io.BytesIO(original.read_bytes()), "x.wav")},
            content_type="multipart/form-data",
        ),
    ):
        body = response.get_json()
        assert response.status_code == 200 and set(body) == {"status", "transcript", "path"}
        assert body["status"] == "success" and body["transcript"] and Path(body["path"]).exists()
        # the first version's spoken form: lowercase, no punctuation, no digits
        transcript = body["transcript"]
        assert transcript == transcript.lower() and not re.search(r"[.,?!\d]", transcript)


def test_legacy_route_falls_back_to_default_audio(worker, stack, vi_clip, tmp_path):
    from api.app import create_app

    default = copy_clip(vi_clip, tmp_path, "default.wav")  # outside the allowed roots on purpose
    app = create_app(stack.settings.model_copy(update={"default_audio": default}))
    body = app.test_client().get("/wav2vec2").get_json()
    assert body["status"] == "success" and body["transcript"]


def test_legacy_route_reports_errors_in_its_shape(ready, audio_root, tmp_path):
    silent = write_audio(audio_root / "silent.wav", np.zeros(16000, np.float32), 16000, "wav")
    response = ready.post("/wav2vec2", data={"path": str(silent)})
    body = response.get_json()
    assert response.status_code == 422 and body["status"] == "error"
    assert body["error"]["code"] == "silent_audio"
    outside = ready.post("/wav2vec2", data={"path": "/etc/passwd"})
    assert outside.status_code == 403 and outside.get_json()["error"]["code"] == "path_not_allowed"


def test_readyz_sees_the_worker(ready):
    body = ready.get("/readyz").get_json()
    assert body["status"] == "ready" and body["workers"]
    assert body["workers"][0]["engine"] == "wav2vec2"
    # the tiny model's paths, measured at the worker's first start (or read from that answer)
    assert re.fullmatch(r"cpu: conv \S+, transformer \S+ \((measured|cached)\)",
                        body["workers"][0]["compute"])
    assert any("cc-by-nc" in w for w in body["warnings"])  # the tiny model's card says nc


def _clip_audio(path: Path) -> np.ndarray:
    import soundfile as sf

    return sf.read(str(path), dtype="float32")[0]


def _bad_audio(tmp_path: Path, case: str) -> Path:
    if case == "silence":
        return write_audio(tmp_path / "silence.wav", np.zeros(32000, np.float32), 16000, "wav")
    if case == "too_long":
        return write_audio(tmp_path / "long.flac", tone(360.0, amp=0.1), 16000, "flac")
    mp3 = write_audio(tmp_path / "ok.mp3", tone(3.0), 16000, "mp3").read_bytes()
    if case == "truncated_mp3":
        cut = tmp_path / "cut.mp3"
        cut.write_bytes(mp3[:200])
        return cut
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(0).bytes(4000))
    return junk
