"""/metrics on the API and on the worker's own exporter, watched while real jobs run through a
real worker process, on SQLite + filesystem broker and on PostgreSQL + Redis.

This module runs its own stack (own database, own broker queues) and its own worker with a known
metrics port, so no other test's worker can take its jobs and skew the counts.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.logs import JobIdFilter, JsonFormatter
from shared.metrics import WEBHOOK_DELIVERIES, queue_names
from tests.audio_factory import write_audio
from tests.conftest import (
    BACKENDS,
    Stack,
    _drop_postgres_database,
    _postgres_database,
    make_stack,
    start_worker,
    stop_worker,
    wait_for_worker,
)
from worker.metrics import start_exporter

#: Not conftest's Redis db 11: this module's worker must only see this module's jobs.
OWN_REDIS_URL = "redis://127.0.0.1:6379/13"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse(text: str) -> Samples:
    """Every sample as {(name, sorted labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module", params=BACKENDS)
def own_stack(request, tmp_path_factory, tiny_model_dir) -> Iterator[Stack]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"metrics-{backend}")
    extra = {"STT_WORKER_METRICS_PORT": str(free_port()), "STT_LOG_FORMAT": "json"}
    if backend == "postgres":
        extra["db"] = _postgres_database()
        redis.Redis.from_url(OWN_REDIS_URL).flushdb()
    stack = make_stack(backend, root, tiny_model_dir, **extra)
    if backend == "postgres":
        stack.env["STT_BROKER_URL"] = OWN_REDIS_URL
        stack.settings = stack.settings.model_copy(update={"broker_url": OWN_REDIS_URL})
    yield stack
    if backend == "postgres":
        _drop_postgres_database(extra["db"])


@pytest.fixture(scope="module")
def own_worker(own_stack: Stack, tmp_path_factory) -> Iterator[tuple[subprocess.Popen, Path]]:
    log_path = tmp_path_factory.mktemp("metrics-worker") / "worker.log"
    proc = start_worker(own_stack, log_path)
    try:
        wait_for_worker(own_stack, proc, log_path)
        yield proc, log_path
    finally:
        stop_worker(proc)


@pytest.fixture()
def own_client(own_stack: Stack):
    from api.app import create_app

    return create_app(own_stack.settings).test_client()


def worker_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['STT_WORKER_METRICS_PORT']}/metrics"


def scrape_api(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return parse(response.get_data(as_text=True))


def scrape_worker(stack: Stack) -> Samples:
    return parse(requests.get(worker_url(stack), timeout=5).text)


def submit(client, path: Path, **fields: str) -> str:
    with path.open("rb") as handle:
        response = client.post(
            "/v1/jobs", data={"file": (handle, path.name), **fields},
            content_type="multipart/form-data",
        )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def wait_job(client, job_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").get_json()
        if job["status"] in {"completed", "failed", "canceled"}:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def purge(client) -> None:
    from api.services import services

    with client.application.app_context():
        with services().celery.connection_for_write() as conn:
            for queue in queue_names(services().settings):
                conn.default_channel.queue_purge(queue)


# --- before any worker runs: what the API reads at scrape time ------------------------------


def test_queue_depth_and_job_gauges_read_live(own_stack, vi_clip):
    from api.app import create_app

    # Jobs for a named model that no worker serves stay in the broker whatever else runs (pytest
    # may have started this module's worker already, depending on its fixture ordering).
    idle = own_stack.settings.model_copy(update={"models": {"idle": "wav2vec2:/none"}})
    own_client = create_app(idle).test_client()
    before = scrape_api(own_client)
    assert value(before, "stt_source_up", source="database") == 1
    assert value(before, "stt_source_up", source="broker") == 1
    ids = [submit(own_client, vi_clip, model="idle") for _ in range(2)]
    queued = scrape_api(own_client)
    assert value(queued, "stt_queue_depth", queue="interactive.idle") == 2
    assert value(queued, "stt_queue_depth", queue="bulk.idle") == 0
    queued_before = value(before, "stt_jobs", status="queued")
    assert value(queued, "stt_jobs", status="queued") == queued_before + 2
    purge(own_client)
    for job_id in ids:
        assert own_client.delete(f"/v1/jobs/{job_id}").get_json()["status"] == "canceled"
    after = scrape_api(own_client)
    assert value(after, "stt_queue_depth", queue="interactive.idle") == 0
    canceled_before = value(before, "stt_jobs", status="canceled")
    assert value(after, "stt_jobs", status="canceled") == canceled_before + 2


# --- with the worker: figures change as jobs run ----------------------------------------------


def test_metrics_change_as_a_job_runs(own_stack, own_worker, own_client, vi_clip):
    api_before, worker_before = scrape_api(own_client), scrape_worker(own_stack)
    job = wait_job(own_client, submit(own_client, vi_clip))
    assert job["status"] == "completed", job["error"]
    api_after, worker_after = scrape_api(own_client), scrape_worker(own_stack)

    def api_delta(name: str, **labels: str) -> float:
        return value(api_after, name, **labels) - value(api_before, name, **labels)

    def worker_delta(name: str, **labels: str) -> float:
        return value(worker_after, name, **labels) - value(worker_before, name, **labels)

    assert api_delta("stt_jobs", status="completed") == 1
    assert api_delta("stt_jobs_audio_seconds", status="completed") == pytest.approx(
        job["duration_s"]
    )
    assert worker_delta("stt_audio_seconds_processed_total", queue="interactive") == (
        pytest.approx(job["duration_s"])
    )
    assert worker_delta("stt_worker_jobs_finished_total", status="completed") == 1
    for histogram in ("stt_job_latency_seconds", "stt_job_processing_seconds"):
        assert worker_delta(f"{histogram}_count", queue="interactive") == 1
    assert worker_delta("stt_real_time_factor_count") == 1
    assert worker_delta("stt_job_processing_seconds_sum", queue="interactive") == pytest.approx(
        job["processing_s"], rel=1e-6
    )
    loads = [v for (name, _), v in worker_after.items() if name == "stt_model_load_seconds"]
    assert len(loads) == 1 and loads[0] > 0


def test_failures_are_counted_by_code(own_stack, own_worker, own_client, tmp_path):
    silent = write_audio(tmp_path / "silence.wav", np.zeros(16000, dtype=np.float32), 16000, "wav")
    before = scrape_worker(own_stack)
    job = wait_job(own_client, submit(own_client, silent))
    assert job["status"] == "failed" and job["error"]["code"] == "silent_audio"
    after = scrape_worker(own_stack)
    code = {"code": "silent_audio"}
    assert value(after, "stt_job_failures_total", **code) == (
        value(before, "stt_job_failures_total", **code) + 1
    )
    assert value(after, "stt_audio_seconds_processed_total", queue="interactive") == value(
        before, "stt_audio_seconds_processed_total", queue="interactive"
    )


def test_job_id_travels_in_worker_and_api_logs(own_stack, own_worker, own_client, vi_clip):
    job_id = submit(own_client, vi_clip)
    assert wait_job(own_client, job_id)["status"] == "completed"
    _, log_path = own_worker
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line[:1] == "{"]
    messages = [e["message"] for e in entries if e.get("job_id") == job_id]
    assert any("transcribing" in m for m in messages), entries[-5:]
    assert any("completed" in m for m in messages)

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(JobIdFilter())
    web_log = logging.getLogger("api.web")
    web_log.addHandler(handler)
    web_log.setLevel(logging.DEBUG)
    try:
        assert own_client.get(f"/v1/jobs/{job_id}/audio").status_code == 200
        own_client.get("/v1/jobs")  # no job in the URL: the context must not leak into it
    finally:
        web_log.removeHandler(handler)
        web_log.setLevel(logging.NOTSET)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records and all(r["job_id"] == job_id for r in records)


# --- without a worker or a database -----------------------------------------------------------


def test_worker_exporter_moves_to_a_free_port_and_serves_webhook_counts(own_stack):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = own_stack.settings.model_copy(
            update={"worker_metrics_port": port, "worker_metrics_port_tries": 50}
        )
        started = start_exporter(settings)
    assert started is not None
    server, bound = started
    try:
        assert port < bound < port + 50
        WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()
        text = requests.get(f"http://127.0.0.1:{bound}/metrics", timeout=5).text
        assert value(parse(text), "stt_webhook_deliveries_total", outcome="delivered") >= 1
    finally:
        server.shutdown()
        server.server_close()
    assert start_exporter(own_stack.settings.model_copy(update={"worker_metrics_port": 0})) is None


def test_scrape_answers_when_the_database_is_down(own_stack):
    from api.app import create_app

    broken = own_stack.settings.model_copy(
        update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    samples = scrape_api(create_app(broken).test_client())
    assert value(samples, "stt_source_up", source="database") == 0
    assert not any(name == "stt_jobs" for name, _ in samples)
