"""Real Vietnamese speech through the API, the queue and real workers of two engine families.

One deployment offers two models: the default (the tiny wav2vec2, generated here) and a named
`whisper` model (the real Whisper-base assembled from PyPI). Jobs asking for `whisper` are routed
to queues only the Whisper worker consumes. The WER bound is one a working pipeline meets (~35 %)
and a silent or garbled one cannot (~100 %).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from shared.speech.textnorm import wer_cer
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import Worker
from tests.conftest import (
    _drop_postgres_database,
    _postgres_database,
    make_stack,
    start_worker,
    stop_worker,
)
from tests.realspeech import vi_clips, whisper_base_dir  # noqa: F401 - fixture
from tests.test_e2e import submit_file, wait_job

pytestmark = pytest.mark.realspeech
WER_BOUND = 0.6


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_model_dir, whisper_base_dir) -> Iterator[dict]:  # noqa: F811
    root = tmp_path_factory.mktemp("two-engines")
    db = _postgres_database()
    stack = make_stack(
        "postgres", root, tiny_model_dir, db=db,
        STT_BROKER_URL="redis://127.0.0.1:6379/12",
        STT_MODELS=f"whisper=whisper:{whisper_base_dir}",
    )
    import redis

    redis.Redis.from_url("redis://127.0.0.1:6379/12").flushdb()
    logs = root / "logs"
    logs.mkdir()
    workers: list[subprocess.Popen] = []
    try:
        workers.append(start_worker(stack, logs / "default.log"))
        stack.env["STT_WORKER_MODEL"] = "whisper"
        workers.append(start_worker(stack, logs / "whisper.log"))
        del stack.env["STT_WORKER_MODEL"]
        _wait_engines(stack.settings.database_url, {"wav2vec2", "whisper"}, workers, logs)
        from api.app import create_app

        yield {"stack": stack, "client": create_app(stack.settings).test_client()}
    finally:
        for proc in workers:
            stop_worker(proc)
        _drop_postgres_database(db)


def _wait_engines(url: str, engines: set[str], workers, logs: Path, timeout: float = 180) -> None:
    sessions = make_session_factory(make_engine(url))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in workers):
            raise RuntimeError("a worker exited: " + " | ".join(
                f.read_text()[-2000:] for f in logs.iterdir()))
        with sessions() as session:
            if {w.engine for w in session.scalars(select(Worker))} >= engines:
                return
        time.sleep(0.5)
    raise RuntimeError("workers never became ready")


def _submit(client, path: Path, **fields) -> str:
    return submit_file(client, path, **fields)["id"]


def test_real_vietnamese_speech_through_the_service(deployment):
    client = deployment["client"]
    clips = vi_clips()
    ids = [_submit(client, clip.path, model="whisper") for clip in clips]
    jobs = [wait_job(client, job_id, timeout=300) for job_id in ids]
    assert all(j["status"] == "completed" for j in jobs), [j["error"] for j in jobs]
    assert {j["engine"] for j in jobs} == {"whisper"} and {j["model_license"] for j in jobs} == {
        "mit"
    }
    wer, cer = wer_cer([c.reference for c in clips], [j["transcript"] for j in jobs])
    assert wer < WER_BOUND and cer < 0.4, (wer, cer)


def test_default_model_jobs_go_to_the_wav2vec2_worker(deployment):
    client = deployment["client"]
    job = wait_job(client, _submit(client, vi_clips()[0].path))
    assert job["status"] == "completed" and job["engine"] == "wav2vec2"
    assert job["queue"] == "interactive"


def test_unknown_model_is_refused(deployment):
    client = deployment["client"]
    with vi_clips()[0].path.open("rb") as handle:
        response = client.post(
            "/v1/jobs", data={"file": (handle, "a.wav"), "model": "nope"},
            content_type="multipart/form-data",
        )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "unknown_model"


def test_readyz_lists_both_engines(deployment):
    body = deployment["client"].get("/readyz").get_json()
    assert {w["engine"] for w in body["workers"]} == {"wav2vec2", "whisper"}
