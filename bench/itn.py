"""Numbers as written: accuracy per category on the hand-checked table, per library, and speed.

Why: the libraries on PyPI that write Vietnamese numbers are each wrong somewhere; the choice
and every fix in shared/text were made on this table (tests/data/itn_vi.tsv: category, spoken,
written). A row counts only if the whole written line is exactly right.

- ``ours``: ``shared.text.numbers.NumberWriter`` (itntext's tagger + our written forms + fixes).
- ``itntext``: itntext 0.1.6 as it comes (``Normalizer(lang="vi", operator="itn")``).
- ``nemo``/``viet-itn``: optional; both need pynini, which the project does not install, so
  each runs in its own virtualenv given by ``--nemo-python``/``--viet-itn-python``, e.g.
  ``python3.11 -m venv /tmp/nemo && /tmp/nemo/bin/pip install nemo_text_processing==1.2.0``
  and ``python3.11 -m venv /tmp/vitn && /tmp/vitn/bin/pip install viet-itn==0.1.0``.

Speed: ``NumberWriter.write`` on 1,200 and 10,000 words of running text made of the table's
lines between plain sentences (dense: one number every ~17 words; news-like: one every ~60),
first call on a fresh writer (nothing remembered) and best of 5 after; and the start-up.

Usage::

    PYTHONPATH=. .venv/bin/python bench/itn.py [--nemo-python P] [--viet-itn-python P]
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conformer_speed import cpu_line  # noqa: E402

from shared.text.numbers import NumberWriter  # noqa: E402

TABLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "itn_vi.tsv"
Row = dict[str, str]

# Each reads one spoken line per stdin line and prints its written line.
_RUNNERS = {
    "nemo": (
        "from nemo_text_processing.inverse_text_normalization.inverse_normalize import "
        "InverseNormalizer\n"
        "import sys\n"
        "n = InverseNormalizer(lang='vi', cache_dir='/tmp/nemo_cache')\n"
        "for line in sys.stdin: print(n.inverse_normalize(line.strip(), verbose=False))\n"
    ),
    "viet-itn": (
        "from src.normalize import InverseTextNormalizer\n"
        "import sys\n"
        "n = InverseTextNormalizer()\n"
        "for line in sys.stdin: print(n.inverse_normalize(line.strip()))\n"
    ),
}


def load_table(path: Path = TABLE) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def ours() -> Callable[[list[str]], list[str]]:
    writer = NumberWriter()
    return lambda lines: [" ".join(s.text for s in writer.write(line.split())) for line in lines]


def itntext_as_is() -> Callable[[list[str]], list[str]]:
    from itntext import Normalizer

    normalizer = Normalizer(lang="vi", operator="itn")
    return lambda lines: [normalizer.normalize(line) for line in lines]


def in_venv(python: str, name: str) -> Callable[[list[str]], list[str]]:
    def run(lines: list[str]) -> list[str]:
        done = subprocess.run(
            [python, "-c", _RUNNERS[name]],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()

    return run


_SYMBOLS = (("₫", " đồng"), ("$", " usd"), ("€", " euro"), ("°", "độ"))


def folded(text: str) -> str:
    """The value without the writing conventions, to compare the grammars themselves: case,
    spaces, separators, currency symbols, "10h"/"10 giờ" and "15 tháng 8"/"15/8" folded."""
    text = re.sub(r"(\d+)h\b", r"\1 giờ", text.lower().strip())
    text = re.sub(r"(\d+) tháng (\d+)", r"\1/\2", text)
    text = re.sub(r"(\d+) năm (\d+)", r"\1/\2", text)
    for symbol, word in _SYMBOLS:
        text = text.replace(symbol, word)
    return re.sub(r"[\s.,]", "", text)


def accuracy(
    rows: Sequence[Row], outputs: Sequence[str], fold: Callable[[str], str] = str.strip
) -> dict[str, tuple[int, int]]:
    """Per category: (rows right, rows)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row, got in zip(rows, outputs, strict=True):
        for key in (row["category"], "all"):
            counts[key][0] += fold(got) == fold(row["written"])
            counts[key][1] += 1
    return {key: (right, total) for key, (right, total) in counts.items()}


def print_table(rows: Sequence[Row], results: dict[str, dict[str, tuple[int, int]]]) -> None:
    categories = list(dict.fromkeys(row["category"] for row in rows)) + ["all"]
    names = list(results)
    print("| category | rows | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for category in categories:
        total = results[names[0]][category][1]
        cells = [f"{100 * results[n][category][0] / total:.0f} %" for n in names]
        print(f"| {category} | {total} | " + " | ".join(cells) + " |")


_FILLER = (
    "theo báo cáo của ủy ban nhân dân thành phố trong buổi họp sáng nay",
    "các đại biểu đã thảo luận về tình hình kinh tế xã hội của địa phương",
    "người dân cho biết họ rất vui khi được chính quyền quan tâm hỗ trợ",
    "lãnh đạo sở yêu cầu các đơn vị khẩn trương triển khai kế hoạch đề ra",
)


def running_text(rows: Sequence[Row], words: int, sentences_between: int) -> list[str]:
    """`words` words of running text: the table's lines in order, `sentences_between` plain
    sentences (13-15 words each) after each one."""
    out: list[str] = []
    while len(out) < words:
        for index, row in enumerate(rows):
            out += row["spoken"].split()
            for k in range(sentences_between):
                out += _FILLER[(index + k) % len(_FILLER)].split()
    return out[:words]


def worst_case(words: int) -> list[str]:
    """Nothing but number words in random order (ASR noise, counting, digit lists): every run is
    as long as a run may be."""
    import random

    pool = "một hai ba bốn năm sáu bảy tám chín không mười mươi trăm nghìn tháng giờ".split()
    rnd = random.Random(0)
    return [rnd.choice(pool) for _ in range(words)]


def speed(rows: Sequence[Row]) -> None:
    started = time.perf_counter()
    NumberWriter()
    print(f"start-up (fresh NumberWriter, imports done): {time.perf_counter() - started:.3f} s")
    # Dense: a number expression every ~17 words; news speech: one every ~60 (4 sentences).
    for density, between in (("dense", 1), ("news-like", 4)):
        for size in (1200, 10000):
            text = running_text(rows, size, between)
            writer = NumberWriter()
            started = time.perf_counter()
            writer.write(text)
            cold = time.perf_counter() - started
            warm = []
            for _ in range(5):
                started = time.perf_counter()
                writer.write(text)
                warm.append(time.perf_counter() - started)
            print(
                f"{density} {size} words: first call {1000 * cold:.1f} ms "
                f"(fresh writer), again {1000 * min(warm):.1f} ms (best of 5)"
            )
    started = time.perf_counter()
    NumberWriter().write(worst_case(1200))
    elapsed = time.perf_counter() - started
    print(f"worst case (number words only) 1200 words: {1000 * elapsed:.0f} ms (fresh writer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nemo-python", help="python of a virtualenv with nemo_text_processing")
    parser.add_argument("--viet-itn-python", help="python of a virtualenv with viet-itn")
    args = parser.parse_args()
    rows = load_table()
    systems: dict[str, Callable[[list[str]], list[str]]] = {
        "ours": ours(),
        "itntext 0.1.6": itntext_as_is(),
    }
    if args.nemo_python:
        systems["nemo_text_processing 1.2.0"] = in_venv(args.nemo_python, "nemo")
    if args.viet_itn_python:
        systems["viet-itn 0.1.0"] = in_venv(args.viet_itn_python, "viet-itn")
    lines = [row["spoken"] for row in rows]
    outputs = {name: run(lines) for name, run in systems.items()}
    print(cpu_line())
    print("\nExact written line (the service's conventions):\n")
    print_table(rows, {name: accuracy(rows, out) for name, out in outputs.items()})
    print("\nValue only (separators, symbols, spaces, date and hour styles folded):\n")
    print_table(rows, {name: accuracy(rows, out, folded) for name, out in outputs.items()})
    print()
    speed(rows)


if __name__ == "__main__":
    main()
