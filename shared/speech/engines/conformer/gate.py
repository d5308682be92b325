"""Which compute paths the start-up measurement may time: the accuracy gate's recorded verdict.

A path is an ONNX Runtime optimisation level, optionally with the front-end convolution in int8
and the batch run as two single-threaded lanes (``all+int8+lanes2``, see ``lanes.py``). Faster
paths change a few low-confidence words, and which words depends on the kernels ONNX Runtime
picks for this CPU's instruction sets. So speed alone may not choose:
``bench/conformer_gate.py`` scores every path on the team's labelled speech and admits one whose
WER is within ``WER_MARGIN`` of the shipped graph's and whose text still equals the vendor SDK's
on most shared clips. Its verdict per CPU family (``shared.speech.tuning.cpu_family``) is kept
in ``gate.json`` beside this module, read here at start-up. A family without a verdict, or one
measured with another ONNX Runtime release (other kernels), gets the paths that reproduce the
SDK's text everywhere they were tried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATE_FILE = Path(__file__).with_name("gate.json")
CONSERVATIVE: tuple[str, ...] = ("extended", "basic")
WER_MARGIN = 0.002  # 0.2 WER points
ORACLE_MIN_SAME = 25  # of the 28 shared clips
REWRITTEN = ("extended", "all")  # the levels that run our rewritten graph (int8 needs it)


@dataclass(frozen=True, slots=True)
class Candidates:
    """The paths to time and where that list came from (said in the log and ``/readyz``)."""

    paths: tuple[str, ...]
    source: str


def split_path(name: str) -> tuple[str, bool]:
    """``"all+int8"`` -> ``("all", True)``: the level and whether the front conv is int8."""
    level, *options = name.split("+")
    return level, "int8" in options


def path_lanes(name: str) -> int:
    """``"all+int8+lanes2"`` -> 2: how many single-threaded lanes run the batch (1: none)."""
    lanes = [o for o in name.split("+")[1:] if o.startswith("lanes")]
    return int(lanes[0].removeprefix("lanes")) if lanes else 1


def path_name(level: str, int8: bool, lanes: int = 1) -> str:
    name = f"{level}+int8" if int8 and level in REWRITTEN else level
    return f"{name}+lanes{lanes}" if lanes > 1 else name


def candidates(
    family: str, ort_version: str, precision: str, gate_file: Path = GATE_FILE
) -> Candidates:
    """The admitted paths for this family, narrowed by ``STT_PRECISION`` (``fp32``: float
    convolution only; ``int8``: int8 wherever the level allows it; ``auto``: as gated)."""
    verdict = read_gate(gate_file).get(family)
    if not verdict or _minor(verdict.get("onnxruntime", "")) != _minor(ort_version):
        paths, source = CONSERVATIVE, f"no accuracy-gate verdict for {family} on this runtime"
    else:
        paths, source = tuple(verdict["admitted"]), f"accuracy gate for {family}"
    if precision != "auto":
        forced = [path_name(split_path(p)[0], precision == "int8", path_lanes(p)) for p in paths]
        paths = tuple(dict.fromkeys(forced))
    return Candidates(paths, source)


def read_gate(gate_file: Path = GATE_FILE) -> dict[str, Any]:
    """Family -> verdict; an unreadable file counts as no verdicts (conservative paths)."""
    try:
        value = json.loads(gate_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
