"""API behaviour at the door: validation, error codes, idempotency, listing, cancel. No worker runs
here, so submitted jobs stay queued; each test runs on SQLite+filesystem and PostgreSQL+Redis."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.audio_factory import tone, write_audio

IDLE_MODEL = "idle"


@pytest.fixture()
def app(stack):
    """The API with one extra named model that no test worker serves."""
    from api.app import create_app

    settings = stack.settings.model_copy(update={"models": {IDLE_MODEL: "wav2vec2:/none"}})
    return create_app(settings)


def _wav_bytes(tmp_path: Path, seconds: float = 1.0) -> bytes:
    return write_audio(tmp_path / "a.wav", tone(seconds), 16000, "wav").read_bytes()


def _upload(client, data: bytes, name: str = "clip.wav", headers=None, **fields):
    payload = {"file": (io.BytesIO(data), name), **fields}
    return client.post("/v1/jobs", data=payload, headers=headers or {},
                       content_type="multipart/form-data")


def _error(response) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]["code"]


def test_upload_is_accepted_recorded_and_stored(client, tmp_path, stack):
    response = _upload(client, _wav_bytes(tmp_path), metadata='{"ticket": "A-1"}')
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"].endswith(f"/v1/jobs/{job['id']}")
    assert job["status"] == "queued" and job["source"] == "upload"
    assert job["metadata"] == {"ticket": "A-1"} and job["input_format"] == "wav"
    stored = stack.settings.data_dir / "jobs" / job["id"] / "input.wav"
    assert stored.exists() and job["original_filename"] == "clip.wav"
    polled = client.get(f"/v1/jobs/{job['id']}").get_json()
    assert polled["id"] == job["id"] and polled["sha256"] == job["sha256"]


def test_format_is_judged_by_content_not_name(client, tmp_path):
    mp3 = write_audio(tmp_path / "a.mp3", tone(1.0), 16000, "mp3").read_bytes()
    accepted = _upload(client, mp3, name="misnamed.wav")
    assert accepted.status_code == 202 and accepted.get_json()["input_format"] == "mp3"
    refused = _upload(client, b"this is not audio at all, just text\n" * 10, name="notes.wav")
    assert refused.status_code == 415 and _error(refused) == "unsupported_format"


def test_empty_upload_and_missing_audio(client):
    assert _error(_upload(client, b"", name="empty.wav")) in {"empty_audio", "missing_audio"}
    response = client.post("/v1/jobs", data={})
    assert response.status_code == 400 and _error(response) == "missing_audio"


def test_upload_over_the_size_limit_is_413(stack, tmp_path):
    from api.app import create_app

    small = stack.settings.model_copy(update={"max_upload_mb": 0.05})
    client = create_app(small).test_client()
    response = _upload(client, _wav_bytes(tmp_path, seconds=3.0))
    assert response.status_code == 413 and _error(response) == "upload_too_large"


def test_audio_path_inside_roots_is_accepted(client, audio_root, tmp_path):
    clip = write_audio(audio_root / "inside.flac", tone(1.0), 16000, "flac")
    response = client.post("/v1/jobs", json={"audio_path": str(clip), "metadata": {"k": "v"}})
    assert response.status_code == 202
    job = response.get_json()
    assert job["source"] == "path" and job["input_format"] == "flac"


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "nul"])
def test_paths_that_escape_the_roots_are_refused(client, audio_root, tmp_path, case):
    outside = write_audio(tmp_path / "outside.wav", tone(1.0), 16000, "wav")
    if case == "dotdot":
        raw = str(audio_root / ".." / ".." / outside.relative_to(outside.anchor))
    elif case == "absolute":
        raw = str(outside)
    elif case == "symlink":
        link = audio_root / f"link-{os.getpid()}.wav"
        link.unlink(missing_ok=True)
        link.symlink_to(outside)
        raw = str(link)
    else:
        raw = str(audio_root / "a\x00.wav")
    response = client.post("/v1/jobs", json={"audio_path": raw})
    expected = "invalid_request" if case == "nul" else "path_not_allowed"
    assert response.status_code in {400, 403} and _error(response) == expected


def test_missing_file_directory_and_fifo(client, audio_root):
    missing = client.post("/v1/jobs", json={"audio_path": str(audio_root / "nope.wav")})
    assert missing.status_code == 404 and _error(missing) == "file_not_found"
    folder = audio_root / "folder"
    folder.mkdir(exist_ok=True)
    assert _error(client.post("/v1/jobs", json={"audio_path": str(folder)})) == "not_a_file"
    fifo = audio_root / "pipe"
    if not fifo.exists():
        os.mkfifo(fifo)
    assert _error(client.post("/v1/jobs", json={"audio_path": str(fifo)})) == "not_a_file"


def test_idempotency_key_replays_and_conflicts(client, tmp_path):
    data = _wav_bytes(tmp_path)
    key = {"Idempotency-Key": f"key-{os.urandom(4).hex()}"}
    first = _upload(client, data, headers=key, metadata='{"a": 1}')
    again = _upload(client, data, headers=key, metadata='{"a": 1}')
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    other = _upload(client, data, headers=key, metadata='{"a": 2}')
    assert other.status_code == 409 and _error(other) == "idempotency_conflict"


def test_list_is_newest_first_with_cursor_and_status_filter(client, tmp_path):
    data = _wav_bytes(tmp_path)
    ids = [_upload(client, data).get_json()["id"] for _ in range(3)]
    page1 = client.get("/v1/jobs?limit=2").get_json()
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:2] and page1["next_cursor"]
    page2 = client.get(f"/v1/jobs?limit=2&cursor={page1['next_cursor']}").get_json()
    assert page2["jobs"][0]["id"] == ids[0]
    queued = client.get("/v1/jobs?status=queued&limit=200").get_json()["jobs"]
    assert all(j["status"] == "queued" for j in queued)
    assert _error(client.get("/v1/jobs?status=bogus")) == "invalid_request"
    assert _error(client.get("/v1/jobs?cursor=!!!")) == "invalid_request"


def test_cancel_a_queued_job(client, tmp_path):
    # A named model no worker serves: the job stays queued even when a test worker is running.
    job = _upload(client, _wav_bytes(tmp_path), model=IDLE_MODEL).get_json()
    response = client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    deleted = client.delete(f"/v1/jobs/{job['id']}")
    assert deleted.status_code == 204
    assert _error(client.get(f"/v1/jobs/{job['id']}")) == "job_not_found"


def test_unknown_job_and_unfinished_transcript(client, tmp_path):
    assert _error(client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")) == "job_not_found"
    assert client.get("/v1/jobs/not-a-uuid").status_code == 404
    job = _upload(client, _wav_bytes(tmp_path), model=IDLE_MODEL).get_json()
    response = client.get(f"/v1/jobs/{job['id']}/transcript")
    assert response.status_code == 409 and _error(response) == "job_not_finished"


def test_bad_fields_are_400(client, tmp_path):
    data = _wav_bytes(tmp_path)
    assert _error(_upload(client, data, metadata="[1, 2]")) == "invalid_request"
    assert _error(_upload(client, data, metadata="{oops")) == "invalid_request"
    assert _error(_upload(client, data, callback_url="ftp://x")) == "invalid_request"
    assert _error(_upload(client, data, decoder="psychic")) == "invalid_request"
    assert _error(client.post("/v1/jobs", data="[]", content_type="application/json")) == (
        "invalid_request"
    )


def test_unknown_route_uses_the_error_shape(client):
    assert _error(client.get("/v2/nothing")) == "not_found"


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_without_worker_is_503(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert response.status_code in {200, 503}


