"""Per-process worker state: settings, database sessions and the loaded model.

Celery runs one task at a time per process; the model lives here for the life of the process
and is never loaded per task. A model that cannot be loaded stops the whole worker with a
message that names it, instead of a pool that respawns children which fail again forever.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from shared.errors import SttError
from shared.metrics import MODEL_LOAD_SECONDS
from shared.settings import Settings
from shared.speech.pipeline import Transcriber, build_transcriber
from shared.store.sessions import make_engine, make_session_factory, session_scope
from shared.store.tables import Worker, utcnow
from worker import (
    reconciler,
    shutdown,  # noqa: F401 - registers the SIGTERM grace in the main process
)
from worker.metrics import start_exporter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    transcriber: Transcriber
    name: str


_runtime: Runtime | None = None


def init_process(settings: Settings, pool_child: bool = False) -> Runtime:
    global _runtime
    if _runtime is not None:
        return _runtime
    loading = time.perf_counter()
    try:
        transcriber = build_transcriber(settings)
    except SttError as exc:
        log.critical("worker cannot start: %s", exc.message)
        if pool_child:
            _stop_worker()
        raise
    sessions = make_session_factory(make_engine(settings.database_url))
    name = f"{socket.gethostname()}:{os.getpid()}"
    _runtime = Runtime(settings, sessions, transcriber, name)
    info = transcriber.engine.info
    load_s = time.perf_counter() - loading
    MODEL_LOAD_SECONDS.labels(info.engine, info.model, info.device).set(load_s)
    start_exporter(settings)  # before the first heartbeat: a worker seen ready is scrapeable
    _start_heartbeat(_runtime)
    _start_reconciler(_runtime)
    log.info("worker %s ready: %s %s on %s", name, info.engine, info.model, info.device)
    return _runtime


_loading = threading.Lock()


def get() -> Runtime:
    """The process's runtime. The solo and threads pools have no worker_process_init, so the
    first task loads it; the lock keeps concurrent first tasks to one model load."""
    if _runtime is None:
        from shared.settings import load_settings

        with _loading:
            return init_process(load_settings())
    return _runtime


def _stop_worker() -> None:
    """Ask the Celery main process to shut down; otherwise it would respawn us forever."""
    parent = os.getppid()
    if parent > 1:
        os.kill(parent, signal.SIGTERM)


def _start_reconciler(rt: Runtime) -> None:
    """Every worker reconciles (guarded by conditional UPDATEs): no extra service to run."""
    from celery import current_app

    reconciler.start(rt.settings, rt.sessions, current_app)


def _start_heartbeat(rt: Runtime) -> None:
    def beat() -> None:
        while True:
            try:
                _write_heartbeat(rt)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not kill the worker
                log.warning("heartbeat failed: %s", exc)
            threading.Event().wait(rt.settings.worker_heartbeat_s)

    threading.Thread(target=beat, name="stt-heartbeat", daemon=True).start()


def _write_heartbeat(rt: Runtime) -> None:
    info = rt.transcriber.engine.info
    with session_scope(rt.sessions) as session:
        session.merge(
            Worker(
                name=rt.name,
                queues=",".join(rt.settings.worker_queues),
                engine=info.engine,
                model_id=info.model,
                model_license=info.license,
                device=info.device,
                fallback=info.fallback,
                model_note=info.note,
                compute=info.compute,
                formatting=rt.transcriber.formatting.status,
                last_seen=utcnow(),
            )
        )
