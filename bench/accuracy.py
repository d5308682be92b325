"""Accuracy and speed over a manifest: WER, CER and real-time factor per subset and overall.

Usage::

    python bench/accuracy.py MANIFEST.tsv [--engine wav2vec2|whisper] [--model M] [--numbers]
    python bench/accuracy.py MANIFEST.tsv --api http://127.0.0.1:8789

In-process it loads the engine once and times only transcription (not loading), so RTF is the
engine's own speed. With ``--api`` each file goes through the running service's job API, so the
numbers include the service's own decoding, VAD and chunking: the figure a user actually gets.
The manifest is a TSV with at least ``file`` (relative to the manifest's folder),
``reference_text`` and ``subset`` columns. Both sides are scored after ``shared.textnorm``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from shared.engines.base import SAMPLE_RATE, DecodeOptions
from shared.textnorm import wer_cer

TERMINAL = {"completed", "failed", "canceled"}


@dataclass(slots=True)
class Row:
    path: Path
    reference: str
    subset: str
    hypothesis: str = ""
    audio_s: float = 0.0
    seconds: float = 0.0


def read_manifest(manifest: Path) -> list[Row]:
    with manifest.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            Row(manifest.parent / r["file"], r["reference_text"], r.get("subset") or "all")
            for r in reader
        ]


def load_audio(path: Path) -> np.ndarray:
    """16 kHz mono float32, peak-normalised; other rates through PyAV's resampler."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        from faster_whisper.audio import decode_audio

        mono = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    peak = float(np.abs(mono).max(initial=0.0))
    return mono / peak * 0.95 if peak > 0 else mono


def in_process(args: argparse.Namespace) -> Callable[[Row], None]:
    """Build the engine once; return a function that transcribes one row into it."""
    from shared.settings import load_settings

    overrides: dict[str, object] = {"engine": args.engine} if args.engine else {}
    if args.model:
        overrides["model"] = args.model
    settings = load_settings(**overrides)
    if settings.engine == "whisper" and not settings.model_explicit:
        # The default model name is a wav2vec2 one: measure the assembled Whisper-base instead.
        from shared.fallback_model import default_cache_dir, ensure_whisper_base

        settings = load_settings(**overrides, model=str(ensure_whisper_base(default_cache_dir())))
    try:
        from shared.engines import load_engine  # type: ignore[attr-defined]
    except ImportError:
        load_engine = None
    if load_engine is not None:
        engine = load_engine(settings)
    elif settings.engine == "whisper":
        from shared.engines.whisper import WhisperEngine

        engine = WhisperEngine(settings.model, device=settings.device)
    else:
        sys.exit("shared.engines.load_engine is not available: only --engine whisper works here")
    print(f"# engine {engine.info}", file=sys.stderr)
    options = DecodeOptions(decoder=settings.decoder, beam_width=settings.beam_width)
    chunk = int(settings.chunk_s * SAMPLE_RATE)

    def run(row: Row) -> None:
        audio = load_audio(row.path)
        row.audio_s = len(audio) / SAMPLE_RATE
        start = time.perf_counter()
        if getattr(engine, "prefers_whole_file", False):
            row.hypothesis = engine.transcribe_file_audio(audio, options).text
        else:  # CTC engines: the pipeline's fixed chunks, texts joined
            pieces = [audio[i : i + chunk] for i in range(0, len(audio), chunk)]
            row.hypothesis = " ".join(r.text for r in engine.transcribe_batch(pieces, options))
        row.seconds = time.perf_counter() - start

    return run


def via_api(args: argparse.Namespace) -> Callable[[Row], None]:
    """Submit each file to a running service and wait for its transcript."""
    import requests

    base = args.api.rstrip("/")

    def run(row: Row) -> None:
        row.audio_s = sf.info(row.path).duration
        start = time.perf_counter()
        with row.path.open("rb") as handle:
            resp = requests.post(f"{base}/v1/jobs", files={"file": handle}, timeout=60)
        resp.raise_for_status()
        job = resp.json()
        while job["status"] not in TERMINAL:
            if time.perf_counter() - start > args.timeout:
                sys.exit(f"{row.path.name}: job {job['id']} not finished after {args.timeout}s")
            time.sleep(args.poll)
            resp = requests.get(f"{base}/v1/jobs/{job['id']}", timeout=30)
            resp.raise_for_status()
            job = resp.json()
        if job["status"] != "completed":
            print(
                f"# {row.path.name}: job {job['id']} {job['status']}: {job.get('error')}",
                file=sys.stderr,
            )
        row.hypothesis = job.get("transcript") or ""
        row.seconds = job.get("processing_s") or time.perf_counter() - start

    return run


def report(rows: list[Row], numbers: bool) -> str:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.subset, []).append(row)
    if len(groups) > 1:
        groups["overall"] = rows
    lines = [f"{'subset':<14}{'clips':>6}{'audio_s':>9}{'WER':>8}{'CER':>8}{'RTF':>7}"]
    for name, group in groups.items():
        wer, cer = wer_cer([r.reference for r in group], [r.hypothesis for r in group], numbers)
        audio = sum(r.audio_s for r in group)
        rtf = sum(r.seconds for r in group) / audio if audio else float("nan")
        lines.append(f"{name:<14}{len(group):>6}{audio:>9.1f}{wer:>8.3f}{cer:>8.3f}{rtf:>7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--engine", choices=["wav2vec2", "whisper"], help="default: STT_ENGINE")
    parser.add_argument("--model", help="model dir or name (default: engine's default)")
    parser.add_argument("--api", help="service base URL; submit jobs instead of running locally")
    parser.add_argument("--numbers", action="store_true", help="digits read as Vietnamese words")
    parser.add_argument("--show", action="store_true", help="print each reference/hypothesis")
    parser.add_argument("--poll", type=float, default=0.5, help="API poll interval, seconds")
    parser.add_argument("--timeout", type=float, default=1800.0, help="API per-job limit, s")
    args = parser.parse_args(argv)
    rows = read_manifest(args.manifest)
    run = via_api(args) if args.api else in_process(args)
    for row in rows:
        run(row)
        if args.show:
            print(f"# {row.path.name}\n#   ref {row.reference}\n#   hyp {row.hypothesis}")
    print(report(rows, args.numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
