"""The ``stt`` command: run the service, a worker or the API alone, migrate, transcribe files."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from shared.jobs.routing import worker_settings
from shared.logs import configure_logging
from shared.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then start the API and one worker (Ctrl-C stops both)")
    sub.add_parser("api", help="serve the HTTP API (waitress)")
    worker = sub.add_parser("worker", help="start one Celery worker (one per GPU)")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    sub.add_parser("migrate", help="apply database migrations")
    transcribe = sub.add_parser("transcribe", help="transcribe files in-process, no queue")
    transcribe.add_argument("files", nargs="+", type=Path)
    add_backfill_parser(sub)
    add_apikey_parser(sub)
    reconcile_parser = sub.add_parser(
        "reconcile", help="re-send jobs whose messages were never sent, lost or orphaned"
    )
    reconcile_parser.add_argument("--once", action="store_true",
                                  help="one pass, print its report as JSON, exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings)
    handlers = {
        "run": lambda: run_all(settings),
        "api": lambda: serve_api(settings),
        "worker": lambda: run_worker(settings, args.pool),
        "migrate": lambda: migrate(settings),
        "transcribe": lambda: transcribe_files(settings, args.files),
        "backfill": lambda: backfill(settings, args),
        "apikey": lambda: apikey(settings, args),
        "reconcile": lambda: reconcile(settings, args.once),
    }
    return handlers[args.command]()


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
    serve(app, host=settings.host, port=settings.port, threads=16)
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


def run_worker(settings: Settings, pool: str) -> int:
    os.execv(sys.executable, worker_command(settings, pool))
    return 0  # not reached


def run_all(settings: Settings) -> int:
    """API and worker as child processes; SIGINT/SIGTERM stop both, waiting for them to exit."""
    migrate(settings)
    children = [
        subprocess.Popen(worker_command(settings)),
        subprocess.Popen([sys.executable, "-m", "shared.cli", "api"]),
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


def transcribe_files(settings: Settings, files: list[Path]) -> int:
    from shared.errors import SttError
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber, default_decoding

    transcriber = build_transcriber(settings)
    defaults = default_decoding(transcriber.engine, settings.decoder, settings.beam_width)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, path in enumerate(files):
            try:
                result = transcriber.run(
                    path, Path(tmp) / f"{index}.wav", settings.max_duration_bulk_s,
                    DecodeOptions(**defaults),
                )
            except SttError as exc:
                print(f"{path}: error {exc.code.value}: {exc.message}", file=sys.stderr)
                status = 1
                continue
            print(f"{path}\t{result.text}" if len(files) > 1 else result.text)
    return status


def add_backfill_parser(sub: argparse._SubParsersAction) -> None:
    backfill = sub.add_parser(
        "backfill", help="queue archived recordings on the bulk queue (idempotent, resumable)"
    )
    backfill.add_argument("paths", nargs="*", type=Path, help="folders to walk, or files")
    backfill.add_argument("--glob", help="pattern under each folder, e.g. '**/*.mp3' "
                          "(default: every file, audio recognised by content)")
    backfill.add_argument("--manifest", type=Path, help="CSV with a `path` column; other "
                          "columns become metadata")
    backfill.add_argument("--callback-url")
    backfill.add_argument("--metadata", nargs="+", action="extend", default=[],
                          metavar="KEY=VALUE", help="job metadata (put the paths first)")
    backfill.add_argument("--decoder", choices=["greedy", "beam"], help="default: STT_DECODER")
    backfill.add_argument("--wait", action="store_true", help="follow every job to its end")
    backfill.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                          help="with --wait: stop following after this long")
    backfill.add_argument("--out", type=Path, help="JSON lines: path, job id, status, "
                          "transcript or error")
    backfill.add_argument("--max-in-flight", type=_positive, help="unfinished jobs at once "
                          "(default: STT_BACKFILL_MAX_IN_FLIGHT)")
    backfill.add_argument("--retry-failed", action="store_true",
                          help="queue again the files whose earlier job failed")


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def backfill(settings: Settings, args: argparse.Namespace) -> int:
    from shared.backfill.run import backfill_command

    return backfill_command(settings, args)


def add_apikey_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("apikey", help="API keys: once one exists, /v1 needs a key")
    actions = keys.add_subparsers(dest="apikey_command", required=True)
    actions.add_parser("create", help="create a key and print it (once)").add_argument("name")
    actions.add_parser("revoke", help="revoke the active key of this name").add_argument("name")
    actions.add_parser("list", help="names, prefixes and dates (never the keys)")


def apikey(settings: Settings, args: argparse.Namespace) -> int:
    from shared.store.sessions import make_engine, make_session_factory

    migrate(settings)  # a first key may well come before the first `stt run`
    actions = {"create": _apikey_create, "revoke": _apikey_revoke, "list": _apikey_list}
    with make_session_factory(make_engine(settings.database_url))() as session:
        return actions[args.apikey_command](settings, session, args)


def _apikey_create(settings: Settings, session, args: argparse.Namespace) -> int:  # noqa: ANN001
    from shared.apikeys import create_key

    try:
        key = create_key(session, args.name, settings.api_keys)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(key)
    print(f"key {args.name!r} created: shown this once, only its hash is stored", file=sys.stderr)
    return 0


def _apikey_revoke(_settings: Settings, session, args: argparse.Namespace) -> int:  # noqa: ANN001
    from shared.apikeys import revoke_key

    if revoke_key(session, args.name):
        print(f"revoked {args.name}", file=sys.stderr)
        return 0
    print(f"no active key named {args.name!r} in the database", file=sys.stderr)
    return 1


def _apikey_list(settings: Settings, session, _args: argparse.Namespace) -> int:  # noqa: ANN001
    from shared.apikeys import list_keys

    for name in settings.api_keys:
        print(f"{name}\t(STT_API_KEYS)\t-\tactive")
    for row in list_keys(session):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        print(f"{row.name}\t{row.key_prefix}...\t{row.created_at:%Y-%m-%d %H:%M}\t{state}")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
