"""Load through the real API and a real worker: requests/s, submit and poll latency, and whether
every accepted job ends (nothing lost), with and without back-pressure.

Usage::

    python -m bench.load [--backend sqlite|postgres] [--clients 16] [--duration 45]
                         [--in-flight 4] [--legacy-every 25] [--max-queued 1000]
                         [--workers 1] [--json report.json]

Starts ``stt api`` (waitress, 16 threads) and ``--workers`` ``stt worker`` processes as
subprocesses on free ports, with the tests' tiny wav2vec2 (built locally) so the figures are
the service's own overhead, not a model's speed. PostgreSQL+Redis is the production pair (a
fresh database on 127.0.0.1:5432 and a private redis-server); SQLite+the filesystem broker is
the embedded default.

Each of ``--clients`` threads, until ``--duration`` ends: keeps up to ``--in-flight`` of its jobs
outstanding (submitting a short clip by upload when it has room), polls its outstanding jobs,
and every ``--legacy-every`` rounds makes one blocking legacy call (``GET /wav2vec2``). A
``503`` answer is counted by its code and the client waits (``Retry-After``, at most 1 s).
Then submissions stop and every accepted job is followed to its end. A small
``--max-queued`` (STT_MAX_QUEUED_JOBS) shows back-pressure: ``queue_full`` answers instead of an
ever longer queue.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import requests

from shared.settings import load_settings
from shared.store.migrations import upgrade
from tests.audio_factory import speechlike, write_audio
from tests.fault_tools import RedisServer, free_port, wait_until
from tests.tiny_models import build_tiny_wav2vec2

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CLIP = ROOT.parent / "shared" / "data" / "vi-speech" / "vivos_VIVOSDEV01_R003.wav"
TERMINAL = {"completed", "failed", "canceled"}
POLL_PAUSE_S = 0.1


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Tally:
    """Everything the client threads observed; one lock, appended from every thread."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, response: requests.Response | None) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            if response is None:
                self.statuses[f"{kind} no-answer"] += 1
                return
            self.statuses[f"{kind} {response.status_code}"] += 1
            if response.status_code >= 500:
                self.errors[f"{response.status_code} {_error_code(response)}"] += 1

    def accept(self, job_id: str) -> None:
        with self.lock:
            self.accepted.append(job_id)


def _error_code(response: requests.Response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return "no-error-body"


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ms = np.asarray(values) * 1000
    return {
        "count": len(values),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


# --- the clients --------------------------------------------------------------------------------


@dataclass
class Client:
    base: str
    clip: bytes
    legacy_path: str
    tally: Tally
    in_flight: int
    legacy_every: int
    session: requests.Session = field(default_factory=requests.Session)
    outstanding: list[str] = field(default_factory=list)

    def run(self, deadline: float) -> None:
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            if self.legacy_every and rounds % self.legacy_every == 0:
                self.call("legacy", "GET", "/wav2vec2", params={"path": self.legacy_path})
            if len(self.outstanding) < self.in_flight:
                self.submit()
            self.poll_all()
            time.sleep(POLL_PAUSE_S)

    def call(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.base + path, timeout=120, **kwargs)
        except requests.RequestException:
            response = None
        self.tally.record(kind, time.perf_counter() - started, response)
        if response is not None and response.status_code == 503:
            time.sleep(min(float(response.headers.get("Retry-After", 1)), 1.0))
        return response

    def submit(self) -> None:
        files = {"file": ("clip.wav", self.clip, "audio/wav")}
        response = self.call("submit", "POST", "/v1/jobs", files=files)
        if response is not None and response.status_code == 202:
            job_id = response.json()["id"]
            self.tally.accept(job_id)
            self.outstanding.append(job_id)

    def poll_all(self) -> None:
        for job_id in list(self.outstanding):
            response = self.call("poll", "GET", f"/v1/jobs/{job_id}")
            if response is not None and response.status_code == 200:
                if response.json()["status"] in TERMINAL:
                    self.outstanding.remove(job_id)


def follow_to_the_end(base: str, job_ids: list[str], timeout: float) -> Counter[str]:
    """Final status of every accepted job; "unfinished" or "missing" would be a loss."""
    outcome: Counter[str] = Counter()
    session = requests.Session()
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        while True:
            response = session.get(f"{base}/v1/jobs/{job_id}", timeout=30)
            status = response.json()["status"] if response.status_code == 200 else "missing"
            if status in TERMINAL or status == "missing" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        outcome[status if status in TERMINAL or status == "missing" else "unfinished"] += 1
    return outcome


# --- the service ----------------------------------------------------------------------------------


@contextlib.contextmanager
def service(args: argparse.Namespace, root: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """API and workers as subprocesses; yields the base URL and the environment they share."""
    with contextlib.ExitStack() as cleanup:
        env = base_env(args, root)
        if args.backend == "postgres":
            env.update(postgres_env(cleanup, root))
        upgrade(load_settings(**{k[4:].lower(): v for k, v in env.items()}).database_url)
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        procs = [spawn(["api"], full_env, root / "api.log")]
        procs += [spawn(["worker"], full_env, root / f"worker{i}.log") for i in range(args.workers)]
        cleanup.callback(stop_all, procs)
        base = f"http://127.0.0.1:{env['STT_PORT']}"
        wait_until(lambda: ready(base, procs, args.workers), 180, "API and workers ready", 0.5)
        yield base, env


def base_env(args: argparse.Namespace, root: Path) -> dict[str, str]:
    model = build_tiny_wav2vec2(root / "tiny-model")
    (root / "audio").mkdir(parents=True, exist_ok=True)
    return {
        "STT_VAR_DIR": str(root / "var"), "STT_MODEL": str(model),
        "STT_ALLOWED_AUDIO_ROOTS": str(root / "audio"), "STT_PORT": str(free_port()),
        "STT_MAX_QUEUED_JOBS": str(args.max_queued), "STT_WORKER_METRICS_PORT": "0",
        "STT_WORKER_HEARTBEAT_S": "2", "STT_LEGACY_WAIT_S": "60", "STT_LOG_LEVEL": "WARNING",
        "STT_RUNTIME": "torch",
    }


def postgres_env(cleanup: contextlib.ExitStack, root: Path) -> dict[str, str]:
    database = f"stt_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    cleanup.callback(drop_database, database)
    broker = cleanup.enter_context(RedisServer(root / "redis"))
    return {
        "STT_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
        "STT_BROKER_URL": broker.url(),
    }


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stt_cli", *command], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )


def ready(base: str, procs: list[subprocess.Popen], workers: int) -> bool:
    if any(proc.poll() is not None for proc in procs):
        raise RuntimeError("a service process exited during start; see its log")
    try:
        body = requests.get(f"{base}/readyz", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return body.get("status") == "ready" and len(body.get("workers", [])) >= workers


def stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the run ------------------------------------------------------------------------------------


def clip_bytes(root: Path) -> bytes:
    """A short real recording if the team data is here, else 3 s of synthetic speech."""
    if CLIP.exists():
        return CLIP.read_bytes()
    return write_audio(root / "clip.wav", speechlike(3.0), 16000, "wav").read_bytes()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stt-load-") as tmp, service(args, Path(tmp)) as (
        base, env,
    ):
        clip = clip_bytes(Path(tmp))
        legacy = Path(env["STT_ALLOWED_AUDIO_ROOTS"]) / "legacy.wav"
        legacy.write_bytes(clip)
        tally = Tally()
        clients = [
            Client(base, clip, str(legacy), tally, args.in_flight, args.legacy_every)
            for _ in range(args.clients)
        ]
        started = time.monotonic()
        deadline = started + args.duration
        threads = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        drained = time.monotonic()
        outcome = follow_to_the_end(base, tally.accepted, args.drain_timeout)
        return report(args, tally, elapsed, outcome, time.monotonic() - drained)


def report(
    args: argparse.Namespace, tally: Tally, elapsed: float, outcome: Counter[str], drain_s: float
) -> dict[str, Any]:
    requests_total = sum(len(v) for v in tally.latencies.values())
    lost = outcome["unfinished"] + outcome["missing"]
    return {
        "backend": args.backend, "clients": args.clients, "workers": args.workers,
        "in_flight_per_client": args.in_flight, "max_queued_jobs": args.max_queued,
        "duration_s": round(elapsed, 1),
        "requests": requests_total,
        "requests_per_s": round(requests_total / elapsed, 1),
        "latency": {kind: percentiles(v) for kind, v in sorted(tally.latencies.items())},
        "answers": dict(sorted(tally.statuses.items())),
        "5xx_by_code": dict(sorted(tally.errors.items())),
        "jobs_accepted": len(tally.accepted),
        "jobs_by_final_status": dict(outcome),
        "jobs_completed_per_s": round(outcome["completed"] / (elapsed + drain_s), 2),
        "drain_s": round(drain_s, 1),
        "jobs_lost": lost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--legacy-every", type=int, default=25)
    parser.add_argument("--max-queued", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    unexpected = [code for code in result["5xx_by_code"] if not code.startswith("503 ")]
    return 1 if result["jobs_lost"] or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
