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

from shared.logs import configure_logging
from shared.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then start the API and one worker (Ctrl-C stops both)")
    sub.add_parser("api", help="serve the HTTP API (waitress)")
    worker = sub.add_parser("worker", help="start one Celery worker (one per GPU)")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    sub.add_parser("migrate", help="apply database migrations")
    transcribe = sub.add_parser("transcribe", help="transcribe files in-process, no queue")
    transcribe.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings)
    handlers = {
        "run": lambda: run_all(settings),
        "api": lambda: serve_api(settings),
        "worker": lambda: run_worker(settings, args.pool),
        "migrate": lambda: migrate(settings),
        "transcribe": lambda: transcribe_files(settings, args.files),
    }
    return handlers[args.command]()


def migrate(settings: Settings) -> int:
    from shared.migrate import upgrade

    upgrade(settings.database_url)
    return 0


def serve_api(settings: Settings) -> int:
    from waitress import serve

    from api.app import create_app

    print(f"stt API listening on http://{settings.host}:{settings.port}", flush=True)
    serve(create_app(settings), host=settings.host, port=settings.port, threads=16)
    return 0


def worker_command(settings: Settings, pool: str = "prefork") -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker.app", "worker",
        "--pool", pool, "--concurrency", "1",
        "--queues", ",".join(settings.worker_queues),
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
    from shared.engines.base import DecodeOptions
    from shared.errors import SttError
    from shared.pipeline import build_transcriber

    transcriber = build_transcriber(settings)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, path in enumerate(files):
            try:
                result = transcriber.run(
                    path, Path(tmp) / f"{index}.wav", settings.max_duration_bulk_s,
                    DecodeOptions(decoder=settings.decoder, beam_width=settings.beam_width),
                )
            except SttError as exc:
                print(f"{path}: error {exc.code.value}: {exc.message}", file=sys.stderr)
                status = 1
                continue
            print(f"{path}\t{result.text}" if len(files) > 1 else result.text)
    return status


if __name__ == "__main__":
    sys.exit(main())
