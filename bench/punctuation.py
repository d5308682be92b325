"""Punctuation and capitals model: held-out figures and speed of the shipped (or a given) model.

Usage (from the repository root)::

    python bench/punctuation.py                         # figures on held-out wiki + news, speed
    python bench/punctuation.py --limit 100000          # the first 100k tokens of each set
    python bench/punctuation.py --speed-only

Held-out wiki is the articles the training script's seeded split left out; news (Dân trí) was
never trained on. Both are lowercased and stripped the way recogniser output is (see
``training/punctuation/evaluate.py`` for the capitalisation F1 definition). Speed: start-up is
ONNX session creation plus vocabulary load; tagging is one thread on 1,200 tokens, the length of
a few minutes of speech.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# training/ is not an installed package: the repository root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.text.punctuation import PunctuationModel  # noqa: E402
from training.punctuation.evaluate import measure, table  # noqa: E402
from training.punctuation.prepare import split  # noqa: E402


def cpu() -> str:
    """The CPU model and its vector/matrix flags: speed figures mean little without them."""
    model, flags = platform.processor(), ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            wanted = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx2")
            flags = " ".join(f for f in line.split(":", 1)[1].split() if f in wanted)
            break
    return f"{model} [{flags}]"


def speed(directory: Path | None, tokens: list[str]) -> None:
    starts = []
    for _ in range(5):
        began = time.perf_counter()
        model = PunctuationModel.load(directory, threads=1)
        starts.append(time.perf_counter() - began)
    sample = (tokens * (1200 // max(len(tokens), 1) + 1))[:1200]
    model.restore(sample)
    runs = []
    for _ in range(20):
        began = time.perf_counter()
        model.restore(sample)
        runs.append(time.perf_counter() - began)
    tag = statistics.median(runs)
    print(f"model: {model.name}")
    print(f"start-up (session + vocab, median of 5): {statistics.median(starts) * 1000:.0f} ms")
    print(f"tagging 1,200 tokens, 1 thread (median of 20): {tag * 1000:.1f} ms")
    print(f"throughput: {1200 / tag:,.0f} tokens/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/vi-text"))
    parser.add_argument("--seed", type=int, default=13, help="the training split's seed")
    parser.add_argument("--limit", type=int, default=0, help="tokens per set; 0: all")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {cpu()}")
    print(f"load average at start: {os.getloadavg()}")
    sample = [form.lower() for form, _ in next(split(args.data, args.seed)["news"])[1]]
    speed(args.model, sample)
    if args.speed_only:
        return
    model = PunctuationModel.load(args.model, threads=1)
    parts = split(args.data, args.seed)
    results = {
        name: measure(model, (t for _, t in parts[name]), args.limit) for name in ("wiki", "news")
    }
    print(table(results))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
