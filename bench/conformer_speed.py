"""Conformer CTC speed: the vendor SDK end to end against our engine, pipeline and bare graph.

Why: the SDK in the ``viet-asr`` wheel runs the same ONNX graph as
``shared/speech/engines/conformer``; before serving our engine we need to know what our
features/loop/decoder and the pipeline (VAD, chunking, batching) cost against the SDK, and
which batch size suits this CPU.

Usage::

    PYTHONPATH=. .venv/bin/python bench/conformer_speed.py [--durations 300,1800] [--threads N]
        [--model /tmp/va] [--rows sdk,pipeline,graph1,graph4,graph8,graph16,pipeline@fp32]

Audio: all 28 shared clips (labelled and unlabelled, 8 kHz ones resampled through
``shared.speech.audio.iter_decoded``) joined with 0.5 s pauses, repeated to the duration. Every row
runs in its own child process; wall and CPU time cover the measured call only (not model load), peak
RSS is the child's ``ru_maxrss`` (its rusage from ``os.wait4``). ``xSDK`` = SDK wall / row
wall (above 1: faster than the SDK). ``words``: words in the transcript (graph rows: frames), a
check that a row transcribed all of it: the SDK's ``.text`` on long audio keeps only its last lines.
A row name ending in ``@fp32`` (or ``@int8``) sets the engine's precision (``STT_PRECISION``,
default ``auto``); ``STT_ONNX_OPTIMIZATION`` sets the graph optimisation level (default
``extended``; ``auto`` measures the paths the accuracy gate admitted, in each row).
``--check`` runs the accuracy gate (``bench/conformer_gate.py``). ``ovh%`` (pipeline rows): the
share of the wall time spent outside the engine's features, graph and CTC decoding, i.e.
audio decoding, normalising, the processed WAV, VAD and stitching.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data")
RATE = 16_000
PIECE_S = 20.0


def build_audio(seconds: float) -> np.ndarray:
    """Float32 16 kHz: every shared clip, 0.5 s pauses between, repeated to ``seconds``."""
    from shared.speech.audio import iter_decoded

    pause = np.zeros(RATE // 2, np.float32)
    clips = []
    for path in sorted(DATA.glob("vi-speech/*.wav")) + sorted(DATA.glob("vi-unlabelled/*.wav")):
        clips += [np.concatenate(list(iter_decoded(path, 600))), pause]
    one = np.concatenate(clips)
    reps = int(np.ceil(seconds * RATE / len(one)))
    return np.tile(one, reps)[: int(seconds * RATE)]


def cpu_line() -> str:
    flags: set[str] = set()
    model = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    have = " ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)
    return f"# CPU {model}, {os.cpu_count()} cores; {have}"


def child(row: str, wav: Path, model: str, threads: int) -> dict[str, object]:
    """Run one row in this process (the child); return its timings as a dict."""
    import soundfile as sf

    audio, _ = sf.read(wav, dtype="float32")
    if row == "sdk":
        import vietasr

        pipe = vietasr.Pipeline.preset("transcribe")
        pcm, _ = sf.read(wav, dtype="int16")
        t0, c0 = time.perf_counter(), os.times()
        text = pipe.transcribe(pcm).text
    else:
        from shared.speech.engines.base import DecodeOptions
        from shared.speech.engines.conformer.engine import ConformerEngine

        engine_s = 0.0
        row, _, precision = row.partition("@")  # "graph8@fp32": the float front end
        batch = int(row.removeprefix("graph")) if row.startswith("graph") else 0
        engine = ConformerEngine(
            model,
            device="cpu",
            threads=threads,
            batch_size=batch,
            precision=precision or "auto",
            optimization=os.environ.get("STT_ONNX_OPTIMIZATION", "extended"),
        )
        if row.startswith("pipeline"):  # "pipeline": the service's default decoding (beam)
            from shared.settings import load_settings
            from shared.speech.pipeline import build_transcriber, default_decoding

            settings = load_settings(engine="conformer", model=model, threads=threads)
            transcriber = build_transcriber(settings, engine)
            decoding = default_decoding(engine, settings.decoder, settings.beam_width)
            if row == "pipeline-greedy":
                decoding = {"decoder": "greedy"}
            options = DecodeOptions(**decoding)  # type: ignore[arg-type]
            timed = EngineClock(engine)
            transcriber.engine = timed  # type: ignore[assignment]
            with tempfile.TemporaryDirectory() as tmp:
                t0, c0 = time.perf_counter(), os.times()
                result = transcriber.run(wav, Path(tmp) / "p.wav", 1e9, options)
                text = result.text
            engine_s = timed.seconds
        else:
            step = int(PIECE_S * RATE)
            pieces = [audio[i : i + step] for i in range(0, len(audio), step)]
            t0, c0 = time.perf_counter(), os.times()
            frames = sum(lp.shape[0] for lp in engine.logits(pieces))
            text = "f " * frames  # the graph rows count output frames in the words column
    wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    overhead = (wall - engine_s) / wall if row.startswith("pipeline") else None
    return {"wall": wall, "cpu": cpu, "words": len(text.split()), "overhead": overhead}


class EngineClock:
    """The engine, timed: seconds spent in its features, graph and CTC decoding, so that the
    pipeline's own share (audio decoding, normalising, WAV writing, VAD, stitching) is the rest.
    Time spent pulling the next chunk (VAD runs lazily inside that pull) is not the engine's."""

    def __init__(self, engine: object) -> None:
        self.engine, self.seconds = engine, 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def transcribe_stream(self, chunks, options):  # noqa: ANN001, ANN201
        pulled, produced = [0.0], [0.0]
        inner = self.engine.transcribe_stream(_timed_iter(chunks, pulled), options)
        yield from _timed_iter(inner, produced)
        self.seconds = produced[0] - pulled[0]


def _timed_iter(items, total: list[float]):  # noqa: ANN001, ANN202
    """``items`` again, adding the seconds each ``next`` took to ``total[0]``."""
    iterator = iter(items)
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            total[0] += time.perf_counter() - start
            return
        total[0] += time.perf_counter() - start
        yield item


def measure(row: str, wav: Path, model: str, threads: int) -> dict[str, object]:
    """One row in a fresh subprocess; peak RSS from the child's rusage."""
    cmd = [sys.executable, __file__, "--child", row, "--wav", str(wav), "--model", model]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # no pipe stalls
        proc = subprocess.Popen([*cmd, "--threads", str(threads)], stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"{row} failed ({status}): {err.read().decode()[-2000:]}")
        result = json.loads(out.read().decode().strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024
    return result


def _share(result: dict[str, object]) -> str:
    overhead = result.get("overhead")
    return f"{100 * float(overhead):>6.1f}" if overhead is not None else f"{'-':>6}"  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durations", default="300", help="comma-separated seconds")
    parser.add_argument("--threads", type=int, default=0, help="ORT threads; 0 = all cores")
    parser.add_argument("--model", default=os.environ.get("STT_MODEL", "/tmp/va"))
    rows = "sdk,pipeline,pipeline-greedy,graph1,graph4,graph8,graph16"
    parser.add_argument("--rows", default=rows)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--wav", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="the accuracy gate (conformer_gate)")
    args = parser.parse_args(argv)
    if args.check:
        from bench.conformer_gate import main as gate_main

        return gate_main(["--model", args.model] if Path(args.model).is_dir() else [])
    if args.child:
        print(json.dumps(child(args.child, args.wav, args.model, args.threads)))
        return 0
    import soundfile as sf

    print(cpu_line())
    print(f"# load average at start {os.getloadavg()}; threads {args.threads or 'all'}")
    header = f"{'row':<16}{'audio_s':>8}{'wall_s':>9}{'RTF':>8}{'RSS_MB':>8}{'CPU_s':>8}"
    header += f"{'xSDK':>7}{'words':>7}{'ovh%':>6}"
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in [float(d) for d in args.durations.split(",")]:
            wav = Path(tmp) / f"bench_{seconds:g}.wav"
            sf.write(wav, build_audio(seconds), RATE, subtype="PCM_16")
            sdk_wall = None
            for row in args.rows.split(","):
                r = measure(row, wav, args.model, args.threads)
                wall = float(r["wall"])  # type: ignore[arg-type]
                sdk_wall = wall if row == "sdk" else sdk_wall
                ratio = f"{sdk_wall / wall:7.2f}" if sdk_wall else f"{'-':>7}"
                print(
                    f"{row:<16}{seconds:>8.0f}{wall:>9.1f}{wall / seconds:>8.3f}"
                    f"{r['rss_mb']:>8.0f}{r['cpu']:>8.1f}{ratio}{r['words']:>7}{_share(r)}",
                    flush=True,
                )
    print(f"# load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
