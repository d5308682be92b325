"""Issue 5, "nothing let in": server paths, crafted uploads, decoder bombs and API keys.

Everything runs against the real app, the real worker process and both stacks; the only
stand-in is a spy on hmac.compare_digest (timing itself cannot be asserted reliably).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from shared.apikeys import hash_key
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import ApiKey, utcnow
from tests.audio_factory import tone, write_audio
from tests.conftest import ROOT, default_signals
from tests.test_e2e import wait_job
from tests.test_fuzz_worker import pool_child

ALICE = "stt_alice-key-0123456789abcdefghijklmnopqrstu"
BOB = "stt_bob-key-0123456789abcdefghijklmnopqrstuvw"
DECODER_CODES = {"undecodable_audio", "empty_audio", "unsupported_format", "silent_audio"}


def _code(response) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def _wav(tmp_path: Path, name: str = "a.wav", seconds: float = 1.0) -> Path:
    return write_audio(tmp_path / name, tone(seconds), 16000, "wav")


def _upload(client, data: bytes, name: str = "clip.wav", headers=None):
    return client.post(
        "/v1/jobs",
        data={"file": (io.BytesIO(data), name)},
        headers=headers or {},
        content_type="multipart/form-data",
    )


def _unique(root: Path, stem: str) -> Path:
    return root / f"{stem}-{uuid.uuid4().hex[:8]}"


# --- server-side paths ------------------------------------------------------------------------


def _path_case(case: str, root: Path, outside: Path) -> str:
    """Build one hostile audio_path inside the allowed root; returns what the client sends."""
    link = _unique(root, case)
    if case == "home_of_nobody":
        return "~nosuchuser-stt/a.wav"
    if case == "relative_dotdot":
        return f"../{outside.parent.name}/{outside.name}"
    if case == "device_via_symlink":
        link.symlink_to("/dev/zero")
    elif case == "outside_dir_via_symlink":
        link.symlink_to(outside.parent, target_is_directory=True)
        return str(link / outside.name)
    elif case == "symlink_loop":
        link.symlink_to(link.with_name(link.name + "-b"))
        link.with_name(link.name + "-b").symlink_to(link)
    elif case == "directory_via_symlink":
        inner = _unique(root, "dir")
        inner.mkdir()
        link.symlink_to(inner, target_is_directory=True)
    elif case == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(link))
        server.close()
    return str(link)


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("home_of_nobody", 403, "path_not_allowed"),
        ("relative_dotdot", 403, "path_not_allowed"),
        ("device_via_symlink", 403, "path_not_allowed"),
        ("outside_dir_via_symlink", 403, "path_not_allowed"),
        ("symlink_loop", 403, "path_not_allowed"),
        ("directory_via_symlink", 400, "not_a_file"),
        ("socket", 400, "not_a_file"),
    ],
)
def test_hostile_paths_are_refused_with_their_code(
    client, audio_root, tmp_path, case, status, code
):
    outside = _wav(tmp_path, "outside.wav")
    response = client.post("/v1/jobs", json={"audio_path": _path_case(case, audio_root, outside)})
    assert (response.status_code, _code(response)) == (status, code)


def test_unencodable_and_nul_paths_are_invalid_requests(client, audio_root):
    for body in ('{"audio_path": "\\ud800.wav"}', '{"audio_path": "a\\u0000b.wav"}'):
        response = client.post("/v1/jobs", data=body, content_type="application/json")
        assert response.status_code == 400 and _code(response) == "invalid_request"


def test_symlink_inside_the_root_is_followed_and_recorded_resolved(client, audio_root):
    target = _wav(audio_root, f"{uuid.uuid4().hex[:8]}.wav")
    link = _unique(audio_root, "alias")
    link.symlink_to(target)
    response = client.post("/v1/jobs", json={"audio_path": str(link)})
    assert response.status_code == 202
    job = response.get_json()
    assert job["original_filename"] == target.name  # the resolved file, not the alias


def _queue_path_job(stack, path: Path) -> str:
    """What POST /v1/jobs does for a path that passed its check (then the file is swapped)."""
    from shared.jobs.queue import enqueue_transcription, make_celery
    from shared.jobs.records import Submission, create_job

    sub = Submission(
        job_id=uuid.uuid4(),
        source="path",
        input_path=path,
        original_filename=path.name,
        sha256="0" * 64,
        input_format="wav",
    )
    sessions = make_session_factory(make_engine(stack.settings.database_url))
    with sessions() as session:
        job, _ = create_job(session, sub)
    enqueue_transcription(make_celery(stack.settings), stack.settings, job.id, job.queue)
    return str(job.id)


@pytest.mark.parametrize(
    ("swap", "code"),
    [
        ("symlink_out", "path_not_allowed"),
        ("folder_out", "path_not_allowed"),
        ("fifo", "not_a_file"),
    ],
)
def test_worker_checks_the_path_again(worker, client, stack, audio_root, tmp_path, swap, code):
    """TOCTOU: the file passed the API's check, then became a link out of the roots or a FIFO
    (which would block the decoder until the task's time limit). The worker refuses both."""
    secret = _wav(tmp_path, "secret.wav", seconds=2.0)
    path = _unique(audio_root, "swapped").with_suffix(".wav")
    if swap == "symlink_out":
        path.symlink_to(secret)
    elif swap == "folder_out":  # a folder on the way became a link out of the roots
        path = _unique(audio_root, "folder") / secret.name
        path.parent.symlink_to(secret.parent, target_is_directory=True)
    else:
        os.mkfifo(path)
    job = wait_job(client, _queue_path_job(stack, path), timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert job["transcript"] is None and job["duration_s"] is None


# --- crafted uploads: playlists and decoder bombs -----------------------------------------------


class FifoCanary:
    """A FIFO nothing may open: a background writer notices the moment any reader does."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path, self.opened, self._stop = path, threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while no reader
            except OSError:
                time.sleep(0.002)
                continue
            self.opened.set()
            os.close(fd)  # the reader sees EOF instead of hanging

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _playlists(canary: Path) -> dict[str, bytes]:
    """Playlists and concat scripts naming the canary, bare and behind each format's magic."""
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{canary}\n#EXTINF:10,\nfile:{canary}\n"
    concat = f"ffconcat version 1.0\nfile '{canary}'\nfile 'concat:{canary}|{canary}'\n"
    riff = b"RIFF\x24\x00\x00\x00WAVE"
    return {
        "bare_hls.m3u8": hls.encode(),
        "bare_concat.txt": concat.encode(),
        "wav_concat.wav": riff + b"\n" + concat.encode(),
        "id3_hls.mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + hls.encode(),
        "ogg_concat.ogg": b"OggS\x00\x02" + bytes(20) + concat.encode(),
        "ftyp_hls.m4a": b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42" + hls.encode(),
        "flac_hls.flac": b"fLaC" + hls.encode(),
    }


def test_crafted_playlists_make_the_worker_read_no_other_file(worker, client, tmp_path, audio_root):
    canary = FifoCanary(tmp_path / "canary.wav")
    try:
        ids = []
        for name, data in _playlists(canary.path).items():
            response = _upload(client, data, name)
            if name.startswith("bare_"):  # no audio magic: refused at the door
                assert response.status_code == 415 and _code(response) == "unsupported_format"
                continue
            assert response.status_code == 202, (name, response.get_json())
            ids.append(response.get_json()["id"])
        served = _unique(audio_root, "playlist").with_suffix(".wav")  # the same, by server path
        served.write_bytes(_playlists(canary.path)["wav_concat.wav"])
        ids.append(client.post("/v1/jobs", json={"audio_path": str(served)}).get_json()["id"])
        jobs = [wait_job(client, job_id, timeout=60) for job_id in ids]
    finally:
        canary.stop()
    assert not canary.opened.is_set(), "a playlist made the decoder open another file"
    assert all(j["status"] == "failed" and j["error"]["code"] in DECODER_CODES for j in jobs), jobs


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def claims_one_second(path: Path, hours: float) -> Path:
    """A FLAC whose header says 1 s (STREAMINFO total samples = 16000) but holds ``hours``."""
    with sf.SoundFile(
        path, "w", samplerate=16000, channels=1, format="FLAC", subtype="PCM_16"
    ) as out:
        minute = np.full(16000 * 60, 0.25, dtype=np.float32)  # constant: a few bytes a frame
        for _ in range(int(hours * 60)):
            out.write(minute)
    data = bytearray(path.read_bytes())
    at = 8 + 10  # "fLaC", block header, block sizes and frame sizes; then rate/ch/bps/total
    packed = int.from_bytes(data[at : at + 8], "big")
    data[at : at + 8] = ((packed & ~((1 << 36) - 1)) | 16000).to_bytes(8, "big")
    data[at + 8 : at + 24] = bytes(16)  # and no MD5 to contradict it
    path.write_bytes(bytes(data))
    assert sf.info(str(path)).duration == pytest.approx(1.0)
    return path


def test_file_claiming_one_second_but_hours_long_is_refused_in_bounded_memory(
    worker, client, tmp_path
):
    bomb = claims_one_second(tmp_path / "bomb.flac", hours=2.0)
    assert bomb.stat().st_size < 2 * 1024 * 1024  # 2 hours in well under 2 MB
    child = pool_child(worker)
    Path(f"/proc/{child}/clear_refs").write_text("5")  # reset the child's peak RSS (VmHWM)
    before = _status_kb(child, "VmRSS")
    job = wait_job(client, _upload(client, bomb.read_bytes(), "bomb.flac").get_json()["id"])
    peak_growth_mb = (_status_kb(child, "VmHWM") - before) / 1024
    assert job["status"] == "failed" and job["error"]["code"] == "audio_too_long", job
    # 2 h of 16 kHz float32 would be 460 MB; streaming keeps one 30 s block (2 MB) at a time.
    assert peak_growth_mb < 150, f"the worker grew {peak_growth_mb:.0f} MB"
    assert worker.poll() is None and pool_child(worker) == child
    print(
        f"\nclaims 1 s, holds 2 h ({bomb.stat().st_size // 1024} KB): peak growth "
        f"{peak_growth_mb:.1f} MB"
    )


LOW_RATE_BOMB = """
import resource, sys
from pathlib import Path
from worker.memory import memory_bound
from shared.speech.processed_wav import prepare_audio
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    with memory_bound(256):
        prepare_audio(Path(sys.argv[1]), Path(sys.argv[2]), 300)
    outcome = "accepted"
except MemoryError:
    outcome = "memory_limit_exceeded"
except Exception as exc:
    outcome = getattr(getattr(exc, "code", None), "value", type(exc).__name__)
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
print(outcome, growth)
"""


def test_memory_bound_caps_a_decoder_that_trusts_the_file(tmp_path):
    """A 1 Hz FLAC turns every 4096-sample frame into 4096 s of 16 kHz audio in one resampler
    call: about 2 GB for a 70 KB file before the duration check can count a sample. Under the
    worker's per-job memory bound (256 MB here) the decode fails and the process stays small."""
    bomb = tmp_path / "one-hertz.flac"
    sf.write(
        bomb,
        (0.5 * np.sin(np.arange(100_000) * 0.3)).astype(np.float32),
        1,
        format="FLAC",
        subtype="PCM_16",
    )
    out = subprocess.run(
        [sys.executable, "-c", LOW_RATE_BOMB, str(bomb), str(tmp_path / "out.wav")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcome, growth_mb = out.stdout.split()
    assert outcome != "accepted" and int(growth_mb) < 256 + 64, out.stdout


# --- API keys --------------------------------------------------------------------------------


def _keyed_app(stack, **keys: str):
    from api.app import create_app

    configured = {name: hash_key(key) for name, key in keys.items()}
    app = create_app(
        stack.settings.model_copy(update={"api_keys": configured, "legacy_wait_s": 0.0})
    )
    return app


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_keys_the_api_is_open(client, capsys, stack):
    from stt_cli.service import warn_if_open

    assert client.get("/v1/jobs").status_code == 200
    warn_if_open(stack.settings)
    assert "WARNING: no API key is configured" in capsys.readouterr().err


def test_every_route_but_the_open_ones_needs_a_key(stack):
    from api.auth import is_open
    from api.openai_compat.errors import is_openai_path

    app = _keyed_app(stack, alice=ALICE)
    client = app.test_client()
    job_id = str(uuid.uuid4())
    checked = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<job_id>", job_id).replace("<batch_id>", job_id)
        path = path.replace("<path:filename>", "app.css")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            if is_open(path):
                assert response.status_code != 401, (method, path)
                continue
            assert response.status_code == 401, path
            if is_openai_path(path):  # OpenAI's routes answer in OpenAI's shape
                assert response.get_json()["error"]["code"] == "invalid_api_key", path
            else:
                assert _code(response) == "unauthorized", path
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked >= 10  # /v1/... and /wav2vec2
    for open_path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json", "/static/app.css"):
        assert client.get(open_path).status_code in {200, 503}, open_path


def test_only_a_valid_key_gets_in(stack, tmp_path):
    client = _keyed_app(stack, alice=ALICE).test_client()
    refused = [
        {},
        _bearer("stt_not-a-key"),
        _bearer(""),
        {"Authorization": f"Basic {ALICE}"},
        {"Authorization": ALICE},
        {"X-API-Key": ALICE[:-1]},
        _bearer(ALICE + "x" * 300),
    ]
    for headers in refused:
        assert client.get("/v1/jobs", headers=headers).status_code == 401, headers
    assert client.get("/v1/jobs", headers=_bearer(ALICE)).status_code == 200
    assert client.get("/v1/jobs", headers={"X-API-Key": ALICE}).status_code == 200
    assert client.get("/v1/jobs", headers={"authorization": f"bearer {ALICE}"}).status_code == 200


def test_a_key_sees_only_its_own_jobs(stack, tmp_path):
    client = _keyed_app(stack, alice=ALICE, bob=BOB).test_client()
    data = _wav(tmp_path).read_bytes()
    same = {"Idempotency-Key": f"same-{uuid.uuid4()}"}
    mine = _upload(client, data, headers={**_bearer(ALICE), **same}).get_json()
    theirs = _upload(client, data, headers={**_bearer(BOB), **same}).get_json()
    assert mine["id"] != theirs["id"]  # idempotency keys are per API key
    for suffix in ("", "/transcript", "/audio", "/deliveries"):
        response = client.get(f"/v1/jobs/{mine['id']}{suffix}", headers=_bearer(BOB))
        assert response.status_code == 404 and _code(response) == "job_not_found", suffix
    assert client.post(f"/v1/jobs/{mine['id']}/deliveries", headers=_bearer(BOB)).status_code == 404
    assert client.delete(f"/v1/jobs/{mine['id']}", headers=_bearer(BOB)).status_code == 404
    listed = client.get("/v1/jobs?limit=200", headers=_bearer(BOB)).get_json()["jobs"]
    assert theirs["id"] in {j["id"] for j in listed} and mine["id"] not in {j["id"] for j in listed}
    assert client.get(f"/v1/jobs/{mine['id']}", headers=_bearer(ALICE)).status_code == 200
    # Queued, or already taken by a worker running in this session: either way, hers to touch.
    assert client.delete(f"/v1/jobs/{mine['id']}", headers=_bearer(ALICE)).status_code in {
        200,
        204,
        409,
    }


def test_a_key_sees_only_its_own_batches(stack, audio_root):
    client = _keyed_app(stack, alice=ALICE, bob=BOB).test_client()
    unique_length = 1.0 + uuid.uuid4().int % 997 / 1000  # content no other test submitted
    path = str(_wav(audio_root, f"batch-{uuid.uuid4().hex[:8]}.wav", unique_length))
    mine = client.post("/v1/batches", json={"paths": [path]}, headers=_bearer(ALICE))
    theirs = client.post("/v1/batches", json={"paths": [path]}, headers=_bearer(BOB))
    assert mine.status_code == theirs.status_code == 202
    mine, theirs = mine.get_json(), theirs.get_json()
    # the same file, but not answered by the other key's job: dedupe is per key too
    assert [r["status"] for r in theirs["results"]] == ["queued"]
    my_job, their_job = mine["results"][0]["job_id"], theirs["results"][0]["job_id"]
    assert my_job != their_job
    response = client.get(f"/v1/batches/{mine['id']}", headers=_bearer(BOB))
    assert response.status_code == 404 and _code(response) == "batch_not_found"
    assert client.get(f"/v1/jobs/{my_job}", headers=_bearer(BOB)).status_code == 404
    own = client.get(f"/v1/batches/{mine['id']}", headers=_bearer(ALICE)).get_json()
    assert [job["id"] for job in own["jobs"]] == [my_job]
    again = client.post("/v1/batches", json={"paths": [path]}, headers=_bearer(ALICE))
    assert again.get_json()["results"][0]["job_id"] == my_job  # her own earlier job answers


def _cli(stack, monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """`stt ...` in-process (the real entry point), with the stack's environment."""
    from stt_cli.main import main

    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    handlers = logging.getLogger().handlers[:]
    try:
        status = main(list(argv))
    finally:
        logging.getLogger().handlers[:] = handlers  # configure_logging replaced pytest's
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_database_keys_created_listed_and_revoked(stack, monkeypatch, capsys, tmp_path):
    from api.app import create_app

    name = f"carol-{uuid.uuid4().hex[:6]}"
    sessions = make_session_factory(make_engine(stack.settings.database_url))
    app = create_app(stack.settings)
    client = app.test_client()
    try:
        status, key, _ = _cli(stack, monkeypatch, capsys, "apikey", "create", name)
        key = key.strip()
        assert status == 0 and key.startswith("stt_") and len(key) > 40
        with sessions() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.name == name))
            assert row.key_hash == hash_key(key) and key not in str(vars(row))
        assert client.get("/v1/jobs").status_code == 401  # a stored key turns auth on
        job = _upload(client, _wav(tmp_path).read_bytes(), headers=_bearer(key)).get_json()
        assert _cli(stack, monkeypatch, capsys, "apikey", "create", name)[0] == 1  # name taken
        status, listing, _ = _cli(stack, monkeypatch, capsys, "apikey", "list")
        assert name in listing and key not in listing and key[:12] in listing
        assert _cli(stack, monkeypatch, capsys, "apikey", "revoke", name)[0] == 0
        # Revoking the last key locks everyone out; it does not open the API.
        assert client.get("/v1/jobs", headers=_bearer(key)).status_code == 401
        assert client.get("/v1/jobs").status_code == 401
        status, rotated, _ = _cli(stack, monkeypatch, capsys, "apikey", "create", name)
        rotated = rotated.strip()
        assert status == 0 and rotated != key  # rotation: a new key under the same name...
        assert client.get(f"/v1/jobs/{job['id']}", headers=_bearer(rotated)).status_code == 200
        assert client.get("/v1/jobs", headers=_bearer(key)).status_code == 401  # ...old one dead
    finally:
        with sessions() as session:  # other tests share this database: leave it open again
            session.query(ApiKey).filter(ApiKey.name == name).delete()
            session.commit()
    assert client.get("/v1/jobs").status_code == 200


def test_settings_never_hold_or_show_a_secret(stack):
    from pydantic import ValidationError

    from shared.settings import load_settings

    with pytest.raises(ValidationError) as refused:
        load_settings(api_keys="ops:my-plaintext-secret")
    assert "my-plaintext-secret" not in str(refused.value)
    with pytest.raises(ValidationError):
        load_settings(api_keys=f"a:{hash_key('x')},a:{hash_key('y')}")
    digest = hash_key(ALICE)
    settings = load_settings(
        api_keys=f"ops:{digest.upper()}",
        database_url="postgresql+psycopg://stt:db-password@db/stt",
        broker_url="redis://:broker-password@redis:6379/0",
        var_dir=str(stack.settings.var_dir),
    )
    assert settings.api_keys == {"ops": digest}
    shown = repr(settings) + str(settings)
    assert digest not in shown and "db-password" not in shown and "broker-password" not in shown
    assert "stt:***@db" in shown


def test_keys_are_compared_in_constant_time(stack, monkeypatch, tmp_path):
    import hmac

    from shared import apikeys

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(
        apikeys.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b)
    )
    client = _keyed_app(stack, alice=ALICE, bob=BOB).test_client()
    assert client.get("/v1/jobs", headers=_bearer(BOB)).status_code == 200
    assert len(calls) == 2  # every configured key compared, no early exit
    assert all(len(a) == len(b) == 64 for a, b in calls)  # hashes, never the raw key


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_server_logs_carry_no_key(stack, tmp_path):
    """The production server (waitress via `stt api`) at DEBUG, and werkzeug's access log."""
    port = _free_port()
    env = {
        **os.environ,
        **stack.env,
        "STT_PORT": str(port),
        "STT_LOG_LEVEL": "DEBUG",
        "STT_API_KEYS": f"alice:{hash_key(ALICE)}",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "stt_cli", "api"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=default_signals,
        )
    try:
        _exercise_keys(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log.read_text()
    assert "listening" in text and "refused GET /v1/jobs" in text
    assert ALICE not in text and BOB not in text and "WARNING: no API key" not in text
    assert ALICE not in _werkzeug_access_log(stack)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _exercise_keys(base: str) -> None:
    import requests

    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the API never started"
            time.sleep(0.2)
    assert requests.get(f"{base}/v1/jobs", headers=_bearer(ALICE), timeout=5).status_code == 200
    assert requests.get(f"{base}/v1/jobs", headers={"X-API-Key": BOB}, timeout=5).status_code == 401
    assert requests.get(f"{base}/v1/jobs", headers=_bearer(BOB), timeout=5).status_code == 401


def _werkzeug_access_log(stack) -> str:
    """The development server's request log: the request line, no headers."""
    import requests
    from werkzeug.serving import make_server

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("werkzeug")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    server = make_server("127.0.0.1", 0, _keyed_app(stack, alice=ALICE))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        requests.get(f"{base}/v1/jobs", headers=_bearer(ALICE), timeout=5)
        requests.get(f"{base}/v1/jobs", headers={"X-API-Key": ALICE}, timeout=5)
    finally:
        server.shutdown()
        logger.removeHandler(handler)
    assert any("/v1/jobs" in line for line in lines), lines
    return "\n".join(lines)


# --- migrations 0004 and 0005 ------------------------------------------------------------------


def test_migrations_0004_and_0005_round_trip_on_both_databases(stack, tmp_path):
    from alembic import command
    from sqlalchemy import inspect
    from sqlalchemy.exc import IntegrityError

    from shared.store.migrations import alembic_config, upgrade
    from tests.conftest import _drop_postgres_database, _postgres_database

    if stack.backend == "postgres":
        name = _postgres_database()
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'round-trip.sqlite3'}"
    try:
        upgrade(url)
        command.downgrade(alembic_config(url), "0003")
        engine = make_engine(url)
        assert "api_keys" not in inspect(engine).get_table_names()
        upgrade(url)
        engine = make_engine(url)
        assert "api_key_id" in {c["name"] for c in inspect(engine).get_columns("jobs")}
        assert "api_key_id" in {c["name"] for c in inspect(engine).get_columns("batches")}
        command.downgrade(alembic_config(url), "0004")  # 0005: the batches' owner
        assert "api_key_id" not in {c["name"] for c in inspect(engine).get_columns("batches")}
        upgrade(url)
        sessions = make_session_factory(engine)
        with sessions() as session:  # the name is unique among active keys only
            for revoked in (True, True, False):
                session.add(
                    ApiKey(
                        name="dup",
                        key_prefix="stt_x",
                        key_hash=uuid.uuid4().hex * 2,
                        revoked_at=utcnow() if revoked else None,
                    )
                )
            session.commit()
            session.add(ApiKey(name="dup", key_prefix="stt_x", key_hash=uuid.uuid4().hex * 2))
            with pytest.raises(IntegrityError):
                session.commit()
        engine.dispose()
    finally:
        if stack.backend == "postgres":
            _drop_postgres_database(name)
