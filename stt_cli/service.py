"""Starting the service: ``stt run``, ``api``, ``worker``, ``migrate`` and ``reconcile``.

``run`` starts the API and one worker as child processes of this one; the others replace or
occupy this process. What each starts is imported inside its function, so the API's process
never loads the worker's engines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import NoReturn

from shared.jobs.routing import worker_settings
from shared.settings import Settings


def migrate(settings: Settings) -> int:
    from shared.store.migrations import upgrade

    upgrade(settings.database_url)
    return 0


def serve_api(settings: Settings) -> int:
    from waitress import serve

    from api.app import create_app

    app = create_app(settings)
    print(f"stt API listening on http://{settings.host}:{settings.port}", flush=True)
    warn_if_open(settings)
    serve(app, host=settings.host, port=settings.port, threads=settings.api_threads)
    return 0


def worker_command(settings: Settings, pool: str = "prefork") -> list[str]:
    """One Celery worker; with ``STT_WORKER_CONCURRENCY`` above 1, that many jobs run as
    threads of one process around one loaded model (Celery's threads pool)."""
    concurrency = settings.worker_concurrency
    if concurrency > 1 and pool == "prefork":
        pool = "threads"
    return [
        sys.executable, "-m", "celery", "-A", "worker.app", "worker",
        "--pool", pool, "--concurrency", str(concurrency if pool == "threads" else 1),
        "--queues", ",".join(worker_settings(settings).worker_queues),
        "--hostname", f"stt-{os.getpid()}@%h", "--loglevel", settings.log_level,
        "--without-gossip", "--without-mingle",
    ]


def run_worker(settings: Settings, pool: str) -> NoReturn:
    os.execv(sys.executable, worker_command(settings, pool))  # replaces this process


def run_all(settings: Settings) -> int:
    """API and worker as child processes; SIGINT/SIGTERM stop both, waiting for them to exit."""
    migrate(settings)
    children = [
        subprocess.Popen(worker_command(settings)),
        subprocess.Popen([sys.executable, "-m", "stt_cli", "api"]),
    ]
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping else 1


def warn_if_open(settings: Settings) -> None:
    """No key anywhere means no authentication at all: say so where an operator will see it."""
    from sqlalchemy.exc import SQLAlchemyError

    from shared.apikeys import keys_configured
    from shared.store.sessions import make_engine, make_session_factory

    try:
        with make_session_factory(make_engine(settings.database_url))() as session:
            if keys_configured(settings.api_keys, session):
                return
    except SQLAlchemyError as exc:  # the API must start even while the database does not
        print(f"could not check for API keys yet ({type(exc).__name__})", file=sys.stderr)
        return
    print("WARNING: no API key is configured (STT_API_KEYS or `stt apikey create NAME`): anyone "
          "who can reach this port can submit jobs and read every transcript.", file=sys.stderr,
          flush=True)


def reconcile(settings: Settings, once: bool) -> int:
    """Workers reconcile on their own; this is for a pass on demand, or a dedicated process."""
    import contextlib
    import json

    from shared.jobs.queue import make_celery
    from shared.store.sessions import make_engine, make_session_factory
    from worker.reconciler import reconcile_once, run_forever

    sessions = make_session_factory(make_engine(settings.database_url))
    celery = make_celery(settings)
    if not once:
        with contextlib.suppress(KeyboardInterrupt):
            run_forever(settings, sessions, celery)
        return 0
    report = reconcile_once(settings, sessions, celery)
    print(json.dumps(report.to_json(), indent=2))
    return 1 if report.errors else 0
