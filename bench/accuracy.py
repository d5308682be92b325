"""Accuracy and speed over a manifest: WER, CER and real-time factor per subset and overall.

Usage::

    python bench/accuracy.py MANIFEST.tsv [--engine wav2vec2|whisper|conformer] [--model M]
    python bench/accuracy.py MANIFEST.tsv --api http://127.0.0.1:8789
    python bench/accuracy.py MANIFEST.tsv --sdk                 # the viet-asr wheel's own SDK
    python bench/accuracy.py MANIFEST.tsv --engine conformer --long   # all clips as one file

In-process it loads the engine once and times only transcription (not loading), so RTF is the
engine's own speed. With ``--api`` each file goes through the running service's job API, so the
numbers include the service's own decoding, VAD and chunking: the figure a user actually gets.
The manifest is a TSV with at least ``file`` (relative to the manifest's folder),
``reference_text`` and ``subset`` columns. Both sides are scored after ``shared.speech.textnorm``.

The Conformer engine (and any engine with ``--pipeline``) runs in-process through the service's
``Transcriber`` (VAD, chunking, level handling: the engine's own attributes decide), decoded as
the service would (``STT_DECODER``, ``auto`` = the engine's default). ``--sdk`` decodes each clip
whole (int16, 16 kHz) with the vendor SDK from the ``viet-asr`` wheel, the reference the
Conformer engine is compared to. ``--long`` joins every manifest clip, 1.0 s pauses between, into
one WAV, transcribes that once (in-process, ``--sdk`` or ``--api``) and scores the joined
reference against the joined hypothesis: the long-file figure next to the short-clip one.
``--sdk --long`` scores the SDK's ``Result.text``, which on long audio holds only its last few
lines (measured: 4 of 8 joined clips, 5 of 15), so that row is the SDK's truncation, not its WER.
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

from shared.settings import Settings
from shared.speech.engines.base import SAMPLE_RATE, DecodeOptions, Engine, auto_decoding
from shared.speech.textnorm import wer_cer

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
        from shared.speech.models.whisper_base import default_cache_dir, ensure_whisper_base

        settings = load_settings(**overrides, model=str(ensure_whisper_base(default_cache_dir())))
    try:
        from shared.speech.engines import load_engine  # type: ignore[attr-defined]
    except ImportError:
        load_engine = None
    if load_engine is not None:
        engine = load_engine(settings)
    elif settings.engine == "whisper":
        from shared.speech.engines.whisper.engine import WhisperEngine

        engine = WhisperEngine(settings.model, device=settings.device)
    else:
        sys.exit(
            "shared.speech.engines.load_engine is not available: only --engine whisper works here"
        )
    print(f"# engine {engine.info}", file=sys.stderr)
    decoding = auto_decoding(settings.engine, settings.decoder, settings.beam_width)
    options = DecodeOptions(**decoding)  # type: ignore[arg-type]
    print(f"# decoding {decoding}", file=sys.stderr)
    chunk = int(settings.chunk_s * SAMPLE_RATE)
    if args.pipeline or settings.engine == "conformer":
        return through_pipeline(settings, engine, options)

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


def through_pipeline(
    settings: Settings, engine: Engine, options: DecodeOptions
) -> Callable[[Row], None]:
    """Each file through the service's Transcriber: decoding, VAD, chunking, stitching."""
    import tempfile

    from shared.speech.pipeline import build_transcriber

    transcriber = build_transcriber(settings, engine)
    work = Path(tempfile.mkdtemp(prefix="accuracy-"))

    def run(row: Row) -> None:
        start = time.perf_counter()
        result = transcriber.run(row.path, work / "processed.wav", 1e9, options)
        row.seconds = time.perf_counter() - start
        # Recognition is scored on the recogniser's own words: the references are spoken form.
        row.audio_s, row.hypothesis = result.duration_s, result.spoken_text or result.text

    return run


def int16_16k(path: Path) -> np.ndarray:
    """The clip as decoded (no normalisation), 16 kHz int16: what the SDK takes."""
    from shared.speech.audio import iter_decoded

    audio = np.concatenate(list(iter_decoded(path, 1e9)))
    return (audio * 32768.0).round().clip(-32768, 32767).astype(np.int16)


def via_sdk(_args: argparse.Namespace) -> Callable[[Row], None]:
    """Each file decoded whole by the vendor SDK (``vietasr``, from the viet-asr wheel)."""
    import vietasr

    pipe = vietasr.Pipeline.preset("transcribe")
    print("# engine vendor SDK vietasr Pipeline.preset('transcribe')", file=sys.stderr)

    def run(row: Row) -> None:
        pcm = int16_16k(row.path)
        row.audio_s = len(pcm) / SAMPLE_RATE
        start = time.perf_counter()
        row.hypothesis = pipe.transcribe(pcm).text
        row.seconds = time.perf_counter() - start

    return run


def joined(rows: list[Row], folder: Path, pause_s: float = 1.0) -> Row:
    """All rows' audio as one 16 kHz PCM_16 WAV (``pause_s`` silence between), one row."""
    pause = np.zeros(int(pause_s * SAMPLE_RATE), np.int16)
    parts: list[np.ndarray] = []
    for row in rows:
        parts += [int16_16k(row.path), pause]
    path = folder / "joined.wav"
    sf.write(path, np.concatenate(parts[:-1]), SAMPLE_RATE, subtype="PCM_16")
    reference = " ".join(r.reference for r in rows)
    return Row(path, reference, f"long({len(rows)})")


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
        if job["status"] == "completed":  # the spoken form, as the references are written
            doc = requests.get(f"{base}/v1/jobs/{job['id']}/transcript?format=json", timeout=30)
            row.hypothesis = doc.json().get("spoken_text", row.hypothesis)
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
    engines = ["wav2vec2", "whisper", "conformer"]
    parser.add_argument("--engine", choices=engines, help="default: STT_ENGINE")
    parser.add_argument("--model", help="model dir or name (default: engine's default)")
    parser.add_argument("--api", help="service base URL; submit jobs instead of running locally")
    parser.add_argument("--sdk", action="store_true", help="the vendor SDK, each clip whole")
    parser.add_argument("--pipeline", action="store_true", help="in-process via the Transcriber")
    parser.add_argument("--long", action="store_true", help="all clips joined into one file")
    parser.add_argument("--numbers", action="store_true", help="digits read as Vietnamese words")
    parser.add_argument("--show", action="store_true", help="print each reference/hypothesis")
    parser.add_argument("--poll", type=float, default=0.5, help="API poll interval, seconds")
    parser.add_argument("--timeout", type=float, default=1800.0, help="API per-job limit, s")
    args = parser.parse_args(argv)
    rows = read_manifest(args.manifest)
    if args.long:
        import tempfile

        rows = [joined(rows, Path(tempfile.mkdtemp(prefix="accuracy-long-")))]
    run = via_api(args) if args.api else via_sdk(args) if args.sdk else in_process(args)
    for row in rows:
        run(row)
        if args.show:
            print(f"# {row.path.name}\n#   ref {row.reference}\n#   hyp {row.hypothesis}")
    print(report(rows, args.numbers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
