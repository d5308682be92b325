"""The ``stt`` command: run the service, a worker or the API alone, migrate, transcribe files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from shared.logs import configure_logging
from shared.settings import load_settings
from stt_cli.backfill import add_backfill_parser, backfill
from stt_cli.keys import add_apikey_parser, apikey
from stt_cli.service import migrate, reconcile, run_all, run_worker, serve_api
from stt_cli.transcribe import add_transcribe_parser, transcribe_files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then start the API and one worker (Ctrl-C stops both)")
    sub.add_parser("api", help="serve the HTTP API (waitress)")
    worker = sub.add_parser("worker", help="start one Celery worker (one per GPU)")
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    sub.add_parser("migrate", help="apply database migrations")
    add_transcribe_parser(sub)
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
    handlers: dict[str, Callable[[], int]] = {
        "run": lambda: run_all(settings),
        "api": lambda: serve_api(settings),
        "worker": lambda: run_worker(settings, args.pool),
        "migrate": lambda: migrate(settings),
        "transcribe": lambda: transcribe_files(settings, args),
        "backfill": lambda: backfill(settings, args),
        "apikey": lambda: apikey(settings, args),
        "reconcile": lambda: reconcile(settings, args.once),
    }
    return handlers[args.command]()


if __name__ == "__main__":
    sys.exit(main())
