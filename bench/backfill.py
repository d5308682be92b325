"""Backfill through the real queue: enqueue rate, interactive wait behind a full bulk queue,
drain rate, the in-flight window, and the cost of a re-run that queues nothing.

Usage::

    python -m bench.backfill [--files 1000] [--backend postgres|sqlite] [--seconds 1.0]
                             [--window-files 300] [--max-in-flight 50] [--no-drain]

Generates ``--files`` short distinct recordings, then:

1. enqueue: ``stt backfill`` (in-process, the same code) with no worker running and a window
   larger than the archive, so every file is hashed, recorded and sent: files/s;
2. interactive: a worker starts on the full bulk queue; interactive jobs are submitted through
   the API one after another; each one's wait (started_at - created_at) and the number of bulk
   jobs that started while it waited, next to the bulk jobs' own length;
3. drain: a second ``stt backfill --wait`` over the same files queues nothing and follows them
   to the end: jobs/s through one worker;
4. window: a fresh archive of ``--window-files`` with ``--max-in-flight``, the worker running;
   the largest number of the run's unfinished jobs seen (sampled every 50 ms);
5. re-run: the first archive again, everything done: files/s of a run that queues nothing.

The model is the tests' tiny wav2vec2 (built locally), so the figures are the service's own
overhead per file, not a model's speed. PostgreSQL+Redis is the production pair; SQLite+the
filesystem broker is the embedded default. ``--no-drain`` skips 3 and 4 (and purges the queue).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import redis
from sqlalchemy import func, select

from shared.backfill.run import BackfillRequest, run_backfill
from shared.jobs.queue import make_celery
from shared.settings import Settings, load_settings
from shared.store.migrations import upgrade
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import Job, JobStatus
from tests.audio_factory import speechlike, write_audio
from tests.conftest import Stack, start_worker, stop_worker, wait_for_worker
from tests.tiny_models import build_tiny_wav2vec2

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/13"  # not the tests' database (11)


def make_archive(folder: Path, count: int, seconds: float, seed: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        audio = speechlike(seconds, seed=seed + i)
        write_audio(folder / f"{i // 100:02d}" / f"rec{i:05d}.wav", audio, 16000, "wav")
    return time.perf_counter() - started


def make_env(root: Path, model: Path, backend: str) -> tuple[dict[str, str], str | None]:
    env = {
        "STT_VAR_DIR": str(root / "var"), "STT_MODEL": str(model),
        "STT_ALLOWED_AUDIO_ROOTS": str(root / "audio"), "STT_WORKER_HEARTBEAT_S": "1",
        "STT_BACKFILL_POLL_S": "0.2", "STT_LOG_LEVEL": "WARNING",
    }
    if backend != "postgres":
        return env, None
    database = f"stt_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    env["STT_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    env["STT_BROKER_URL"] = REDIS_URL
    return env, database


def enqueue_phase(settings: Settings, archive: Path, count: int) -> dict:
    report = run_backfill(settings, BackfillRequest(paths=[archive], max_in_flight=count + 1))
    assert report.tally.queued == count, report.summary()
    return {"files": count, "seconds": round(report.elapsed_s, 2),
            "files_per_s": round(count / report.elapsed_s, 1), "batch_id": str(report.batch_id)}


def interactive_phase(settings: Settings, sessions, archive: Path, rounds: int = 5) -> dict:
    """Submit interactive jobs one after another while the bulk queue is full."""
    from api.app import create_app

    client = create_app(settings).test_client()
    urgent = archive.parent / "urgent"
    make_archive(urgent, rounds, 1.0, seed=10_000_000)
    waits, jumped = [], []
    for path in sorted(urgent.rglob("*.wav")):
        job_id = uuid.UUID(client.post("/v1/jobs", json={"audio_path": str(path)}).get_json()["id"])
        job = _wait_started(sessions, job_id)
        waits.append((job.started_at - job.created_at).total_seconds())
        jumped.append(_bulk_started_between(sessions, job.created_at, job.started_at))
        time.sleep(0.5)
    bulk_left = _count(sessions, Job.queue == "bulk", Job.status == JobStatus.QUEUED)
    return {"rounds": rounds, "wait_s": [round(w, 3) for w in waits],
            "bulk_jobs_started_meanwhile": jumped, "bulk_still_queued_after": bulk_left,
            "bulk_job_s": _bulk_job_seconds(sessions)}


def _wait_started(sessions, job_id: uuid.UUID) -> Job:
    while True:
        with sessions() as session:
            job = session.get(Job, job_id)
            if job.started_at is not None:
                return job
        time.sleep(0.02)


def _bulk_started_between(sessions, start, end) -> int:
    return _count(sessions, Job.queue == "bulk", Job.started_at > start, Job.started_at < end)


def _count(sessions, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Job).where(*where))


def _bulk_job_seconds(sessions) -> dict:
    """Length of a bulk job as the queue sees it: from one bulk start to the next."""
    with sessions() as session:
        starts = sorted(session.scalars(
            select(Job.started_at).where(Job.queue == "bulk", Job.started_at.is_not(None))
        ))
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
    return {"median": round(statistics.median(gaps), 3), "p90": round(_p90(gaps), 3)}


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def drain_phase(settings: Settings, sessions, archive: Path, count: int) -> dict:
    report = run_backfill(settings, BackfillRequest(paths=[archive], wait=True))
    assert report.tally.queued == 0 and report.tally.existing == count, report.summary()
    with sessions() as session:
        first, last = session.execute(
            select(func.min(Job.started_at), func.max(Job.finished_at)).where(Job.queue == "bulk")
        ).one()
    span = (last - first).total_seconds()
    return {"jobs": count, "failed": report.failed, "seconds": round(span, 1),
            "jobs_per_s": round(count / span, 2)}


def window_phase(settings: Settings, sessions, root: Path, count: int, limit: int) -> dict:
    archive = root / "audio" / "window"
    make_archive(archive, count, 1.0, seed=20_000_000)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            unfinished = _count(
                sessions, Job.input_path.startswith(str(archive)),
                Job.status.in_([JobStatus.QUEUED, JobStatus.PROCESSING]),
            )
            peak[0] = max(peak[0], unfinished)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    report = run_backfill(settings, BackfillRequest(paths=[archive], max_in_flight=limit))
    stop.set()
    sampler.join()
    return {"files": count, "max_in_flight": limit, "peak_unfinished_seen": peak[0],
            "seconds": round(report.elapsed_s, 1),
            "files_per_s": round(count / report.elapsed_s, 2)}


def rerun_phase(settings: Settings, archive: Path, count: int) -> dict:
    report = run_backfill(settings, BackfillRequest(paths=[archive]))
    assert report.tally.queued == 0, report.summary()
    return {"files": count, "seconds": round(report.elapsed_s, 2),
            "files_per_s": round(count / report.elapsed_s, 1)}


def purge_bulk(settings: Settings) -> None:
    with make_celery(settings).connection_for_write() as connection:
        connection.default_channel.queue_purge("bulk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each recording")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--window-files", type=int, default=300)
    parser.add_argument("--max-in-flight", type=int, default=50)
    parser.add_argument("--no-drain", action="store_true", help="skip phases 3 and 4")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="stt-bench-backfill-"))
    model = build_tiny_wav2vec2(root / "model")
    env, database = make_env(root, model, args.backend)
    os.environ.update(env)
    settings = load_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    archive = root / "audio" / "archive"
    figures: dict = {"backend": args.backend, "files": args.files, "audio_s": args.seconds}
    figures["generate_s"] = round(make_archive(archive, args.files, args.seconds, 0), 1)
    figures["enqueue"] = enqueue_phase(settings, archive, args.files)
    print(json.dumps(figures["enqueue"]), flush=True)
    log = root / "worker.log"
    worker = start_worker(Stack(args.backend, settings, env), log)
    try:
        wait_for_worker(Stack(args.backend, settings, env), worker, log)
        figures["interactive"] = interactive_phase(settings, sessions, archive)
        print(json.dumps(figures["interactive"]), flush=True)
        if args.no_drain:
            purge_bulk(settings)
        else:
            figures["drain"] = drain_phase(settings, sessions, archive, args.files)
            print(json.dumps(figures["drain"]), flush=True)
            figures["window"] = window_phase(
                settings, sessions, root, args.window_files, args.max_in_flight
            )
            print(json.dumps(figures["window"]), flush=True)
        figures["rerun"] = rerun_phase(settings, archive, args.files)
    finally:
        stop_worker(worker)
        engine.dispose()
        if database:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
