"""The Conformer's unit list: the BPE tokens behind the graph's output columns.

``units.txt`` holds ``token id`` per line, in id order; ``\u2581`` starts a word. Only the
first ``size`` units (the graph's output columns) are used, and a gap or a reordering stops
start-up rather than shifting every token of every transcript.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.speech.ctc_base import CtcVocab

WORD_PREFIX = "\u2581"
_UNIT_LINE = re.compile(r"(\S+) (\d+)")


def read_units(path: Path, size: int) -> CtcVocab:
    """The first ``size`` units (the graph's output columns) as a BPE CTC vocabulary."""
    tokens: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        match = _UNIT_LINE.fullmatch(line.strip())
        if match is None or int(match.group(2)) != number:
            raise ValueError(f"{path}: line {number + 1} is not '<token> {number}'")
        tokens.append(match.group(1))
    if len(tokens) < size:
        raise ValueError(f"{path} lists {len(tokens)} units; the graph emits {size}")
    tokens = tokens[:size]
    special = {i for i, t in enumerate(tokens) if t.startswith("<") and t.endswith(">")}
    blank = tokens.index("<blank>") if "<blank>" in tokens else 0
    return CtcVocab(tuple(tokens), blank, None, frozenset(special - {blank}), WORD_PREFIX)
