"""``stt backfill``: its options; the run itself is ``shared.backfill.run``."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.settings import Settings


def add_backfill_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
