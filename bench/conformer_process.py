"""Whole processes, as a user runs them: ``stt transcribe`` on embedded defaults against the SDK.

Why: an in-process figure leaves out what a user waits for too: imports, model load, the
start-up measurement, the ONNX rewrites. Here each side is one fresh process on the same file,
``stt transcribe FILE`` with no STT_MODEL or STT_ENGINE (the offline default, the Conformer) and
a script calling the ``viet-asr`` wheel's SDK (``Pipeline.preset("transcribe").transcribe``,
import and model load included). The sides alternate for several rounds, so load from other
processes hits both alike; the load average is printed beside every run. Before the rounds one
untimed ``stt transcribe`` fills its caches (model assembly, the start-up measurement, the
rewritten graph) and is reported as the first run; every timed run is a later one, which must
not redo that work. Peak RSS is each process's ``ru_maxrss`` (``os.wait4``).

Usage::

    PYTHONPATH=. .venv/bin/python bench/conformer_process.py [--seconds 300] [--rounds 3]
        [--env STT_ONNX_OPTIMIZATION=all]   # extra settings for the stt side
        [--before /path/to/older/checkout]  # a third side: that checkout's stt, same file

Audio: every shared clip (labelled and unlabelled) joined with 0.5 s pauses, repeated to the
length (``bench/conformer_speed.build_audio``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.conformer_speed import ROOT, build_audio, cpu_line

SDK_SCRIPT = """
import sys, soundfile, vietasr
pcm, _ = soundfile.read(sys.argv[1], dtype="int16")
print(vietasr.Pipeline.preset("transcribe").transcribe(pcm).text[-80:])
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and the last line of stdout of one whole process, run in
    the checkout its PYTHONPATH names (``-m`` puts the working directory first on the path)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        cwd = env.get("PYTHONPATH", str(ROOT))
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"{cmd[:4]} failed ({status}): {err.read().decode()[-2000:]}")
        lines = out.read().decode().strip().splitlines()
    return wall, usage.ru_maxrss / 1024, (lines[-1] if lines else "")[-60:]


def stt_env(work: Path, extra: list[str], root: Path = ROOT) -> dict[str, str]:
    """Embedded defaults: no model or engine named; caches in this bench's own folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STT_")}
    env |= {"PYTHONPATH": str(root), "STT_VAR_DIR": str(work / "var")}
    env["STT_MODEL_CACHE_DIR"] = os.environ.get("STT_MODEL_CACHE_DIR", str(work / "models"))
    env |= dict(item.split("=", 1) for item in extra)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for stt")
    parser.add_argument("--work", type=Path, help="keep caches here (default: a temp folder)")
    parser.add_argument("--before", type=Path, help="another checkout's stt as a third side")
    args = parser.parse_args(argv)
    import soundfile as sf

    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        wav = Path(tmp) / f"joined_{args.seconds:g}.wav"
        sf.write(wav, build_audio(args.seconds), 16_000, subtype="PCM_16")
        stt = [sys.executable, "-m", "stt_cli", "transcribe", str(wav)]
        sdk = [sys.executable, "-c", SDK_SCRIPT, str(wav)]
        sides = {"sdk": (sdk, dict(os.environ)), "stt": (stt, stt_env(work, args.env))}
        if args.before:
            sides["before"] = (stt, stt_env(work / "before", args.env, args.before))
        for side in [name for name in sides if name != "sdk"]:
            load = os.getloadavg()[0]
            first, rss, _ = run(*sides[side])
            print(f"# {side} first run (caches filled): {first:.1f} s, {rss:.0f} MB, "
                  f"load {load:.2f}")
        walls: dict[str, list[float]] = {side: [] for side in sides}
        print("| round | side | wall s | peak RSS MB | load avg (1 min) |")
        print("| --- | --- | --- | --- | --- |")
        for round_ in range(1, args.rounds + 1):
            for side, (cmd, side_env) in sides.items():
                load = os.getloadavg()[0]
                wall, rss, _tail = run(cmd, side_env)
                walls[side].append(wall)
                print(f"| {round_} | {side} | {wall:.1f} | {rss:.0f} | {load:.2f} |", flush=True)
    sdk_s = statistics.median(walls["sdk"])
    for side in [name for name in walls if name != "sdk"]:
        ratios = [a / b for a, b in zip(walls["sdk"], walls[side], strict=True)]
        print(
            f"# median: SDK {sdk_s:.1f} s, {side} {statistics.median(walls[side]):.1f} s: "
            f"{sdk_s / statistics.median(walls[side]):.2f}x the SDK (per round "
            f"{', '.join(f'{r:.2f}' for r in ratios)}); {args.seconds:g} s of audio"
        )
    print(f"# load average now {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
