"""Nothing lost: real faults against real processes, on SQLite+filesystem broker and on
PostgreSQL+Redis (a private redis-server, so restarting it disturbs no one else).

Fast tests drive the reconciler, back-pressure and the API's 503s without a worker; the ones
marked ``slow`` kill, stop and starve real worker processes mid-job and check that every job
still ends exactly once: one recorded outcome, ``attempts`` counting the runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared.jobs.queue import make_celery
from shared.jobs.records import Submission, create_job
from shared.settings import Settings
from shared.store.retries import RetryPolicy, is_transient, with_db_retry
from shared.store.sessions import make_engine, make_session_factory
from shared.store.tables import Job, JobStatus, Worker, utcnow
from tests.audio_factory import write_audio
from tests.conftest import (
    ROOT,
    Stack,
    _drop_postgres_database,
    _postgres_database,
    make_stack,
    start_worker,
)
from tests.fault_tools import (
    RedisServer,
    TcpProxy,
    children_of,
    kill_pool_child,
    kill_whole_worker,
    stop_everything,
    wait_until,
)
from worker import runlock
from worker.reconciler import reconcile_once

BACKENDS = ("sqlite", "postgres")
TERMINAL = {"completed", "failed", "canceled"}
LONG_S = 12  # seconds of speech; beam decoding with the tiny model takes about as long
# Reconciler and retry timings shrunk so each fault resolves in seconds, not minutes.
FAST_ENV = {
    "STT_RECONCILE_INTERVAL_S": "1",
    "STT_RECONCILE_UNSENT_AFTER_S": "2",
    "STT_RECONCILE_QUEUED_AFTER_S": "3",
    "STT_RECONCILE_ORPHAN_AFTER_S": "2",
    "STT_DB_RETRY_MAX_DELAY_S": "2",
    "STT_WORKER_METRICS_PORT": "0",
    "STT_RUNTIME": "torch",  # loads faster than the ONNX build; the faults don't depend on it
}
NO_RECONCILER = {"STT_RECONCILE_INTERVAL_S": "0"}


# --- the rig: one backend, its own broker, workers started on demand ------------------------------


@dataclass
class Rig:
    stack: Stack
    root: Path
    sessions: sessionmaker[Session]
    redis: RedisServer | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    _client: Any = None

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def start_worker(self, **env: str) -> subprocess.Popen:
        stack = Stack(self.stack.backend, self.settings, {**self.stack.env, **env})
        log = self.root / f"worker-{len(self.workers)}.log"
        proc = start_worker(stack, log)
        self.workers.append(proc)
        wait_until(lambda: self._ready(proc, log), 180, f"worker {len(self.workers)} ready")
        return proc

    def _ready(self, proc: subprocess.Popen, log: Path) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early:\n{log.read_text()[-4000:]}")
        names = [f"{socket.gethostname()}:{pid}" for pid in children_of(proc.pid)]
        with self.sessions() as session:
            return bool(names) and session.scalar(
                select(func.count()).where(Worker.name.in_(names))
            ) == len(names)

    @property
    def client(self):  # noqa: ANN201 - Flask test client
        if self._client is None:
            from api.app import create_app

            app = create_app(self.settings)
            app.config["TESTING"] = True
            self._client = app.test_client()
        return self._client

    def submit(self, clip: Path, **fields: Any) -> str:
        """A server-path job for a copy of ``clip`` under the allowed root."""
        path = self.settings.allowed_audio_roots[0] / f"{uuid.uuid4().hex}{clip.suffix}"
        shutil.copyfile(clip, path)
        response = self.client.post("/v1/jobs", json={"audio_path": str(path), **fields})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    def job(self, job_id: str | uuid.UUID) -> Job:
        with self.sessions() as session:
            return session.get_one(Job, uuid.UUID(str(job_id)))

    def wait_job(self, job_id: str, check: Callable[[Job], bool], what: str, timeout: float = 180):
        def matching() -> Job | None:
            job = self.job(job_id)
            return job if check(job) else None

        try:
            return wait_until(matching, timeout, f"job {job_id} {what}")
        except AssertionError as exc:
            tail = self.logs()[-6000:]
            raise AssertionError(f"{exc}: {self.job(job_id).status}\n{tail}") from exc

    def wait_done(self, job_id: str, timeout: float = 180) -> Job:
        return self.wait_job(job_id, lambda j: j.status in TERMINAL, "to finish", timeout)

    def wait_running(self, job_id: str, attempt: int = 1) -> Job:
        return self.wait_job(
            job_id, lambda j: j.status == "processing" and j.attempts == attempt,
            f"to run (attempt {attempt})",
        )

    def logs(self) -> str:
        return "".join(p.read_text() for p in sorted(self.root.glob("worker-*.log")))

    def outcomes(self, job_id: str) -> list[str]:
        """Outcomes written by workers for this job (``(already recorded)`` ones excluded)."""
        marker = f"job {job_id}: "
        return [
            line.split(marker, 1)[1].split()[0]
            for line in self.logs().splitlines()
            if marker in line and "already recorded" not in line
            and line.split(marker, 1)[1].split()[0] in TERMINAL
        ]


def build_rig(
    backend: str, root: Path, model_dir: Path, cleanup: contextlib.ExitStack, **extra: str
) -> Rig:
    env = {**FAST_ENV, **extra}
    redis_server = None
    if backend == "postgres":
        database = _postgres_database()
        cleanup.callback(_drop_postgres_database, database)
        redis_server = cleanup.enter_context(RedisServer(root / "redis"))
        env.update(db=database, STT_BROKER_URL=redis_server.url())
    stack = make_stack(backend, root, model_dir, **env)
    engine = make_engine(stack.settings.database_url)
    cleanup.callback(engine.dispose)
    rig = Rig(stack, root, make_session_factory(engine), redis_server)
    cleanup.callback(stop_everything, rig.workers)  # runs first: workers die before their services
    return rig


@pytest.fixture(params=BACKENDS)
def make_rig(request: pytest.FixtureRequest, tmp_path: Path, tiny_model_dir: Path):
    with contextlib.ExitStack() as cleanup:
        count = iter(range(100))

        def build(**extra: str) -> Rig:
            root = tmp_path / f"rig{next(count)}"
            return build_rig(request.param, root, tiny_model_dir, cleanup, **extra)

        yield build


@pytest.fixture()
def rig(make_rig) -> Rig:
    return make_rig()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, vi_clip: Path) -> dict[str, Path]:
    speech = sf.read(str(vi_clip), dtype="float32")[0]
    folder = tmp_path_factory.mktemp("fault-clips")
    repeats = int(np.ceil(LONG_S * 16000 / len(speech)))
    long = np.tile(speech, repeats)[: LONG_S * 16000]
    return {
        "short": write_audio(folder / "short.wav", speech, 16000, "wav"),
        "long": write_audio(folder / "long.wav", long, 16000, "wav"),
    }


def slow_job(rig: Rig, clips: dict[str, Path]) -> str:
    """A job that runs for seconds: long enough to be hit mid-transcription."""
    return rig.submit(clips["long"], decoder="beam")


def unsent_job(rig: Rig, clip: Path, status: JobStatus = JobStatus.QUEUED, **values: Any) -> str:
    """A row as a crash would leave it: committed, its message never sent (or long gone)."""
    path = rig.settings.allowed_audio_roots[0] / f"{uuid.uuid4().hex}.wav"
    shutil.copyfile(clip, path)
    sub = Submission(uuid.uuid4(), "path", path, None, "0" * 64, "wav")
    with rig.sessions() as session:
        job, _ = create_job(session, sub)
        session.execute(update(Job).where(Job.id == job.id).values(status=status, **values))
        session.commit()
    return str(job.id)


def backdate(rig: Rig, job_id: str, **columns_ago_s: float) -> None:
    values = {name: utcnow() - timedelta(seconds=s) for name, s in columns_ago_s.items()}
    with rig.sessions() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(**values))
        session.commit()


def reconcile(rig: Rig):  # noqa: ANN201 - ReconcileReport
    return reconcile_once(rig.settings, rig.sessions, make_celery(rig.settings))


def queue_depth(rig: Rig, queue: str = "interactive") -> int:
    with make_celery(rig.settings).connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except Exception:  # noqa: BLE001 - Redis forgets an empty queue
            return 0


def purge(rig: Rig, queue: str = "interactive") -> None:
    with make_celery(rig.settings).connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


def job_rows(rig: Rig) -> int:
    with rig.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Job)))


def job_folders(rig: Rig) -> int:
    folder = rig.settings.data_dir / "jobs"
    return len(list(folder.iterdir())) if folder.exists() else 0


def bounded(call: Callable[[], Any], timeout: float = 60) -> Any:
    """Run ``call`` in a thread and fail if it hangs: a dead service must not block a request."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert result, f"the call did not return within {timeout:.0f} s"
    return result[0]


# --- back-pressure --------------------------------------------------------------------------------


@pytest.mark.parametrize("make_rig", ["sqlite"], indirect=True)
def test_full_queue_answers_503_queue_full_with_retry_after(make_rig, clips):
    rig = make_rig(STT_MAX_QUEUED_JOBS="2", STT_QUEUE_FULL_RETRY_AFTER_S="7")
    path = rig.settings.allowed_audio_roots[0] / "a.wav"
    shutil.copyfile(clips["short"], path)
    first = rig.client.post("/v1/jobs", json={"audio_path": str(path)},
                            headers={"Idempotency-Key": "first"})
    assert first.status_code == 202
    rig.submit(clips["short"])
    with clips["short"].open("rb") as upload:
        full = rig.client.post("/v1/jobs", data={"file": (upload, "x.wav")},
                               content_type="multipart/form-data")
    assert full.status_code == 503 and full.headers["Retry-After"] == "7"
    assert full.get_json()["error"]["code"] == "queue_full"
    assert job_rows(rig) == 2 and job_folders(rig) == 0  # the refused upload was not stored
    replay = rig.client.post("/v1/jobs", json={"audio_path": str(path)},
                             headers={"Idempotency-Key": "first"})
    assert replay.status_code == 200 and replay.get_json()["id"] == first.get_json()["id"]
    assert rig.client.post("/v1/jobs", json={"audio_path": str(path), "queue": "bulk"}
                           ).status_code == 202  # bulk has its own budget
    assert rig.client.delete(f"/v1/jobs/{first.get_json()['id']}").status_code == 200
    assert rig.client.post("/v1/jobs", json={"audio_path": str(path)}).status_code == 202


# --- the reconciler, without a worker -------------------------------------------------------------


def test_api_records_when_it_sent_the_message(rig, clips):
    job = rig.job(rig.submit(clips["short"]))
    assert job.status == "queued" and job.enqueued_at is not None
    assert queue_depth(rig) == 1


def test_reconciler_sends_a_job_committed_but_never_sent(rig, clips):
    old = unsent_job(rig, clips["short"])
    backdate(rig, old, created_at=3600)
    fresh = unsent_job(rig, clips["short"])  # maybe its sender is still about to send it
    report = reconcile(rig)
    assert report.unsent == [old] and not report.errors
    assert rig.job(old).enqueued_at is not None and rig.job(fresh).enqueued_at is None
    assert queue_depth(rig) == 1
    assert reconcile(rig).unsent == [] and queue_depth(rig) == 1  # sent once, not every pass


def test_concurrent_reconcilers_send_a_job_once(rig, clips):
    job_ids = [unsent_job(rig, clips["short"]) for _ in range(5)]
    for job_id in job_ids:
        backdate(rig, job_id, created_at=3600)
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(reconcile(rig))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sent = [job_id for report in reports for job_id in report.unsent]
    assert sorted(sent) == sorted(job_ids)
    assert queue_depth(rig) == len(job_ids)


def test_reconciler_resends_only_what_the_broker_lost(rig, clips):
    backlog = [rig.submit(clips["short"]) for _ in range(3)]
    for job_id in backlog:
        backdate(rig, job_id, enqueued_at=3600)
    assert reconcile(rig).lost == []  # an old but healthy backlog is left alone
    purge(rig)  # what a Redis restart without persistence does
    newer = rig.submit(clips["short"])  # sent after the loss: its message is there
    report = reconcile(rig)
    assert sorted(report.lost) == sorted(backlog) and newer not in report.lost
    assert queue_depth(rig) == 4
    for job_id in backlog:
        backdate(rig, job_id, enqueued_at=3600)
    assert reconcile(rig).lost == []  # every job has its message again


def test_reconciler_recovers_a_processing_job_only_when_no_live_run_holds_it(rig, clips):
    job_id = unsent_job(rig, clips["short"], JobStatus.PROCESSING, attempts=1)
    backdate(rig, job_id, started_at=7200, enqueued_at=7200)
    lock = runlock.for_job(rig.settings, rig.sessions, uuid.UUID(job_id))
    assert lock.try_acquire()  # a live run, as far as anyone can tell
    try:
        report = reconcile(rig)
        assert report.orphaned == [] and report.stuck == [job_id]  # past its hard time limit
        assert queue_depth(rig) == 0
    finally:
        lock.release()
    report = reconcile(rig)
    assert report.orphaned == [job_id] and queue_depth(rig) == 1
    assert reconcile(rig).orphaned == []  # one resend per STT_RECONCILE_ORPHAN_AFTER_S


def test_stt_reconcile_once_prints_its_report(rig, clips):
    job_id = unsent_job(rig, clips["short"])
    backdate(rig, job_id, created_at=3600)
    env = {**os.environ, **rig.stack.env}
    done = subprocess.run(
        [sys.executable, "-m", "stt_cli", "reconcile", "--once"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert f'"{job_id}"' in done.stdout and '"errors": []' in done.stdout


# --- the API while a service is down --------------------------------------------------------------


@pytest.mark.parametrize("make_rig", ["postgres"], indirect=True)
def test_api_answers_503_broker_unavailable_while_redis_is_down(rig, clips):
    assert rig.redis is not None
    rig.submit(clips["short"])
    rig.redis.stop()
    path = rig.settings.allowed_audio_roots[0] / "down.wav"
    shutil.copyfile(clips["short"], path)
    response = bounded(lambda: rig.client.post("/v1/jobs", json={"audio_path": str(path)}))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "broker_unavailable"
    assert job_rows(rig) == 1  # nothing half-accepted
    rig.redis.start()
    assert rig.client.post("/v1/jobs", json={"audio_path": str(path)}).status_code == 202


@pytest.mark.parametrize("make_rig", ["postgres"], indirect=True)
def test_api_answers_503_database_unavailable_while_postgres_is_unreachable(make_rig, clips):
    proxy = TcpProxy(5432).restore()
    try:
        rig = _proxied(make_rig(), proxy)
        job_id = rig.submit(clips["short"])
        proxy.cut()
        for call in (
            lambda: rig.client.get(f"/v1/jobs/{job_id}"),
            lambda: rig.client.post("/v1/jobs", json={"audio_path": "/nowhere.wav"}),
            lambda: rig.client.post("/v1/jobs", data={"file": (clips["short"].open("rb"), "a.wav")},
                                    content_type="multipart/form-data"),
        ):
            response = bounded(call)
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert response.get_json()["error"]["code"] == "database_unavailable"
        assert job_folders(rig) == 0  # the refused upload was removed again
        proxy.restore()
        assert rig.client.get(f"/v1/jobs/{job_id}").status_code == 200
        assert job_rows(rig) == 1
    finally:
        proxy.cut()


def _proxied(rig: Rig, proxy: TcpProxy) -> Rig:
    """The same rig, its API and workers reaching PostgreSQL through ``proxy``."""
    url = rig.settings.database_url.replace(":5432/", f":{proxy.port}/")
    rig.stack = Stack(
        rig.stack.backend, rig.settings.model_copy(update={"database_url": url}),
        {**rig.stack.env, "STT_DATABASE_URL": url},
    )
    return rig


# --- the retry helper -----------------------------------------------------------------------------


def test_db_retry_backs_off_on_connection_errors_only():
    refused = _refused_connection_error()
    assert is_transient(refused)
    slept: list[float] = []
    outcomes = iter([refused, refused, "done"])

    def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(first_delay_s=0.5, max_delay_s=0.8, max_total_s=60)
    assert with_db_retry(flaky, "test", policy, sleep=slept.append) == "done"
    assert slept == [0.5, 0.8]
    conflict = IntegrityError("INSERT", {}, Exception("duplicate key"))
    with pytest.raises(IntegrityError):  # a real error is not retried
        with_db_retry(lambda: _raise(conflict), "test", policy, sleep=slept.append)
    with pytest.raises(OperationalError):  # nor forever
        with_db_retry(lambda: _raise(refused), "test", RetryPolicy(max_total_s=0), slept.append)
    assert slept == [0.5, 0.8]


def _refused_connection_error() -> OperationalError:
    from tests.fault_tools import free_port

    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("connecting to a closed port succeeded")


def _raise(exc: Exception) -> None:
    raise exc


# --- workers killed, stopped and starved mid-job --------------------------------------------------


@pytest.mark.slow
def test_pool_child_killed_mid_job_is_redelivered_and_completes_once(rig, clips):
    worker = rig.start_worker(**NO_RECONCILER)  # Celery's own redelivery, nothing else
    job_id = slow_job(rig, clips)
    rig.wait_running(job_id)
    kill_pool_child(worker.pid)  # reject_on_worker_lost: Celery requeues the message
    job = rig.wait_done(job_id)
    assert job.status == "completed" and job.transcript, job.error_message
    assert job.attempts == 2 and rig.outcomes(job_id) == ["completed"]
    assert "sent again" not in rig.logs()


@pytest.mark.slow
def test_whole_worker_killed_mid_job_is_recovered_by_the_reconciler(rig, clips):
    first = rig.start_worker()
    job_id = slow_job(rig, clips)
    rig.wait_running(job_id)
    # Redis keeps the message unacked until the visibility timeout (hours); the filesystem
    # broker loses it with the process. Either way only the reconciler brings the job back.
    kill_whole_worker(first)
    assert rig.job(job_id).status == "processing"
    rig.start_worker()
    job = rig.wait_done(job_id)
    assert job.status == "completed" and job.transcript, job.error_message
    assert job.attempts == 2 and rig.outcomes(job_id) == ["completed"]
    assert f"job {job_id}: processing message sent again" in rig.logs()


@pytest.mark.slow
def test_job_that_keeps_killing_its_worker_ends_failed_too_many_attempts(rig, clips):
    worker = rig.start_worker(STT_MAX_ATTEMPTS="2", **NO_RECONCILER)
    job_id = slow_job(rig, clips)
    for attempt in (1, 2):
        rig.wait_running(job_id, attempt)
        kill_pool_child(worker.pid)
    job = rig.wait_done(job_id)
    assert job.status == "failed" and job.error_code == "too_many_attempts"
    assert job.attempts == 3 and job.transcript is None
    assert rig.outcomes(job_id) == ["failed"]


@pytest.mark.slow
def test_stuck_processing_jobs_are_retried_and_capped(rig, clips):
    retried = unsent_job(rig, clips["short"], JobStatus.PROCESSING, attempts=1)
    capped = unsent_job(rig, clips["short"], JobStatus.PROCESSING, attempts=3)
    for job_id in (retried, capped):  # their worker vanished two hours ago
        backdate(rig, job_id, started_at=7200, enqueued_at=7200)
    rig.start_worker()
    job = rig.wait_done(retried)
    assert job.status == "completed" and job.attempts == 2, job.error_message
    job = rig.wait_done(capped)
    assert job.status == "failed" and job.error_code == "too_many_attempts"


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish(rig, clips):
    worker = rig.start_worker()
    job_id = slow_job(rig, clips)
    rig.wait_running(job_id)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=180) == 0
    job = rig.job(job_id)  # finished before the worker exited
    assert job.status == "completed" and job.attempts == 1 and job.transcript


@pytest.mark.slow
def test_sigterm_past_the_grace_requeues_the_job_and_it_completes_once(rig, clips):
    worker = rig.start_worker(STT_WORKER_SHUTDOWN_GRACE_S="1", **NO_RECONCILER)
    job_id = slow_job(rig, clips)
    rig.wait_running(job_id)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    assert rig.job(job_id).status == "processing"  # stopped, not finished, not failed
    assert queue_depth(rig) == 1  # its message is back in the broker
    rig.start_worker()
    job = rig.wait_done(job_id)
    assert job.status == "completed" and job.transcript, job.error_message
    assert job.attempts == 2 and rig.outcomes(job_id) == ["completed"]


@pytest.mark.slow
@pytest.mark.parametrize("make_rig", ["postgres"], indirect=True)
def test_redis_restart_loses_no_job(rig, clips):
    assert rig.redis is not None
    rig.start_worker()
    running = slow_job(rig, clips)
    rig.wait_running(running)
    waiting = [rig.submit(clips["short"]) for _ in range(3)]  # messages only in Redis
    never_sent = unsent_job(rig, clips["short"])  # a crash between commit and send
    rig.redis.stop()
    path = rig.settings.allowed_audio_roots[0] / "while-down.wav"
    shutil.copyfile(clips["short"], path)
    refused = bounded(lambda: rig.client.post("/v1/jobs", json={"audio_path": str(path)}))
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "broker_unavailable"
    rig.redis.start()  # empty: the queued messages are gone
    for job_id in (running, *waiting, never_sent):
        job = rig.wait_done(job_id)
        assert job.status == "completed" and job.attempts == 1, (job_id, job.error_message)
        assert rig.outcomes(job_id) == ["completed"]
    assert job_rows(rig) == 5


@pytest.mark.slow
@pytest.mark.parametrize("make_rig", ["postgres"], indirect=True)
def test_postgres_outage_mid_job_keeps_the_result(make_rig, clips):
    proxy = TcpProxy(5432).restore()
    try:
        rig = _proxied(make_rig(), proxy)
        rig.start_worker()
        running = slow_job(rig, clips)
        rig.wait_running(running)
        queued = rig.submit(clips["short"])  # claimed only after the outage began
        proxy.cut()
        assert bounded(lambda: rig.client.get(f"/v1/jobs/{running}")).status_code == 503
        wait_until(lambda: f"job {running}: finish: database unavailable" in rig.logs(),
                   120, "the worker to retry its finish")
        proxy.restore()
        for job_id in (running, queued):
            job = rig.wait_done(job_id)
            assert job.status == "completed" and job.attempts == 1, job.error_message
            assert job.transcript and job.progress == 100.0 and job.finished_at
            assert rig.outcomes(job_id) == ["completed"]
        assert job_rows(rig) == 2
    finally:
        proxy.cut()
