"""Written transcripts: no recognised word lost, and what formatting costs.

    PYTHONPATH=. .venv/bin/python bench/formatting.py          # in-process, embedded defaults
    PYTHONPATH=. .venv/bin/python bench/formatting.py --api http://127.0.0.1:8789
    PYTHONPATH=. .venv/bin/python bench/formatting.py --speed [--seconds 300]

No loss: the 15 labelled shared clips, and the same clips joined into one file, are transcribed
once; the written transcript and the spoken one are each scored against the reference after the
same normalisation on all three sides (our number writer, then lower case with punctuation
dropped), so a formatting choice ("15" for "mười lăm") is never an error and any word the
formatter dropped, added or changed is. The two WERs must agree within 0.3 points.

Speed: the 300 s file of joined real speech goes through the pipeline once with formatting on;
the time formatting took is printed beside the whole job's processing time, with the formatter's
start-up time and the process's peak RSS before and after loading it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.accuracy import TERMINAL, Row, joined, read_manifest  # noqa: E402
from bench.conformer_speed import RATE, build_audio, cpu_line  # noqa: E402
from shared.speech.textnorm import normalize  # noqa: E402
from shared.text.numbers import NumberWriter  # noqa: E402

MANIFEST = Path(__file__).resolve().parents[2] / "shared/data/vi-speech/manifest.tsv"
Texts = tuple[str, str]  # (written, spoken)
Run = Callable[[Path], Texts]


def in_process() -> tuple[object, Run]:
    from shared.settings import load_settings
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import build_transcriber, default_decoding

    settings = load_settings()
    transcriber = build_transcriber(settings)
    defaults = default_decoding(transcriber.engine, settings.decoder, settings.beam_width)
    work = Path(tempfile.mkdtemp(prefix="formatting-"))

    def run(path: Path) -> Texts:
        result = transcriber.run(path, work / "p.wav", 1e9, DecodeOptions(**defaults))
        return result.text, result.spoken_text

    return transcriber, run


def via_api(base: str, timeout_s: float = 1800.0) -> Run:
    def run(path: Path) -> Texts:
        with path.open("rb") as handle:
            job = requests.post(f"{base}/v1/jobs", files={"file": handle}, timeout=60).json()
        deadline = time.monotonic() + timeout_s
        while job["status"] not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.3)
            job = requests.get(f"{base}/v1/jobs/{job['id']}", timeout=30).json()
        if job["status"] != "completed":
            sys.exit(f"{path.name}: job {job['id']} {job['status']}: {job.get('error')}")
        doc = requests.get(f"{base}/v1/jobs/{job['id']}/transcript?format=json", timeout=30)
        body = doc.json()
        return job["transcript"], body["spoken_text"]

    return run


def scored(rows: list[Row], texts: list[Texts], writer: NumberWriter) -> tuple[float, float]:
    import jiwer

    def norm(text: str) -> str:
        words = normalize(text).split()
        return normalize(" ".join(s.text for s in writer.write(words)))

    refs = [norm(r.reference) for r in rows]
    written = float(jiwer.wer(refs, [norm(w) for w, _ in texts]))
    spoken = float(jiwer.wer(refs, [norm(s) for _, s in texts]))
    return 100 * written, 100 * spoken


def no_loss(run: Run, show: bool) -> int:
    rows = read_manifest(MANIFEST)
    writer = NumberWriter()
    long_row = joined(rows, Path(tempfile.mkdtemp(prefix="formatting-long-")))
    texts = [run(r.path) for r in rows]
    long_texts = [run(long_row.path)]
    print("| set | words | WER written (normalised back) | WER spoken | difference |")
    print("| --- | --- | --- | --- | --- |")
    worst = 0.0
    for name, rs, ts in (("15 clips", rows, texts), ("joined 64 s", [long_row], long_texts)):
        words = sum(len(normalize(r.reference).split()) for r in rs)
        w, s = scored(rs, ts, writer)
        worst = max(worst, abs(w - s))
        print(f"| {name} | {words} | {w:.2f} % | {s:.2f} % | {w - s:+.2f} |")
    if show:
        for row, (w, s) in zip(rows, texts, strict=True):
            print(f"\n{row.path.name}\n  ref:     {row.reference}\n  spoken:  {s}\n  written: {w}")
    print(f"\nlargest difference {worst:.2f} points (target: at most 0.3)")
    return 0 if worst <= 0.3 else 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def speed(seconds: float) -> int:
    from shared.settings import load_settings
    from shared.speech.engines.base import DecodeOptions
    from shared.speech.pipeline import default_decoding
    from shared.text.formatter import Formatter

    rss_before = rss_mb()
    started = time.perf_counter()
    Formatter.load()  # alone first: its own start-up and memory, before the engine's
    load_s = time.perf_counter() - started
    formatter_mb = rss_mb() - rss_before
    transcriber, _ = in_process()
    settings = load_settings()
    work = Path(tempfile.mkdtemp(prefix="formatting-speed-"))
    sf.write(work / "in.wav", build_audio(seconds), RATE, subtype="PCM_16")
    defaults = default_decoding(transcriber.engine, settings.decoder, settings.beam_width)
    result = transcriber.run(work / "in.wav", work / "p.wav", 1e9, DecodeOptions(**defaults))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(cpu_line())
    print(f"# the formatter's own RSS {formatter_mb:.0f} MB; process peak RSS {rss:.0f} MB")
    print("| audio s | job processing s | formatting s | share | formatter start-up s | words |")
    print("| --- | --- | --- | --- | --- | --- |")
    share = 100 * result.formatting_s / result.processing_s
    words = len(result.spoken_text.split())
    print(
        f"| {result.duration_s:.0f} | {result.processing_s:.2f} | {result.formatting_s:.3f} "
        f"| {share:.2f} % | {load_s:.2f} | {words} |"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", help="service base URL: jobs through the running service")
    parser.add_argument("--speed", action="store_true", help="time formatting on a long file")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--show", action="store_true", help="print each clip's three texts")
    args = parser.parse_args(argv)
    if args.speed:
        return speed(args.seconds)
    run = via_api(args.api.rstrip("/")) if args.api else in_process()[1]
    return no_loss(run, args.show)


if __name__ == "__main__":
    sys.exit(main())
