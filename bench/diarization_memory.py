"""What diarizing a long recording costs in memory: peak RSS over the loaded model, per length.

    PYTHONPATH=. .venv/bin/python bench/diarization_memory.py --minutes 5 60
    PYTHONPATH=. .venv/bin/python bench/diarization_memory.py --minutes 60 --before /tmp/base

The recording is a three-speaker conversation built from the shared clips, repeated to the
length asked and written as the worker's processed WAV (16 kHz mono PCM_16). Each run is a
fresh child process: it loads the diarizer, notes its peak RSS, diarizes the file the way the
worker does, and prints the growth, the wall time and a digest of the turns, so two checkouts
(`--before`: a worktree of an earlier commit) can be compared in one run on one machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conformer_speed import cpu_line  # noqa: E402
from shared.speech.engines.base import SAMPLE_RATE  # noqa: E402
from tests.conversations import conversation  # noqa: E402

# Peak RSS read from VmHWM: ru_maxrss survives exec on Linux, so a child would report the
# parent's peak (the recording it just wrote) as its own.
CHILD = """
import hashlib, sys, time
from pathlib import Path
from shared.speech.speakers.diarizer import Diarizer
from shared.speech.speakers.weights import ensure_campplus
from shared.speech.vad import default_detector

def peak_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

diarizer = Diarizer.load(ensure_campplus(), default_detector())
loaded = peak_mb()
began = time.perf_counter()
wav = Path(sys.argv[1])
if hasattr(diarizer, "diarize_wav"):
    found = diarizer.diarize_wav(wav, 1, 20)
else:  # a checkout from before: the worker loaded the file whole
    from shared.speech.processed_wav import load_wav
    found = diarizer.diarize(load_wav(wav), 1, 20)
wall = time.perf_counter() - began
peak = peak_mb()
# Speakers numbered by first turn, as users see them: a checkout that numbers clusters
# otherwise gives the same digest for the same turns.
order = {}
for t in found.turns:
    order.setdefault(t.speaker, len(order))
turns = repr([(round(t.start, 3), round(t.end, 3), order[t.speaker]) for t in found.turns])
digest = hashlib.sha256(turns.encode()).hexdigest()[:12]
print(f"+{peak - loaded:.0f} MB (peak {peak:.0f} MB), {wall:.1f} s, "
      f"{found.speakers} speakers, {len(found.turns)} turns, turns {digest}")
"""


def recording(minutes: float, folder: Path) -> Path:
    audio = conversation("VFC", 110, seed=99, reuse=True).mono
    length = int(minutes * 60 * SAMPLE_RATE)
    path = folder / f"long-{minutes:g}min.wav"
    sf.write(path, np.resize(audio, length), SAMPLE_RATE, subtype="PCM_16")
    return path


def run(checkout: Path, wav: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(wav)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 60.0])
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    print(cpu_line())
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            wav = recording(minutes, Path(tmp))
            print(f"{minutes:g} min, now: {run(ROOT, wav)}")
            if args.before:
                print(f"{minutes:g} min, before: {run(args.before, wav)}")


if __name__ == "__main__":
    main()
