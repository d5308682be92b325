"""Pick the fastest of a few equivalent compute paths by timing them on this machine, once.

Why measure instead of reading CPU flags: a flag says an instruction exists, not that the
library in hand uses it well. On one Xeon with AVX512-BF16, torch's bf16 matmul ran at 60 %
of its fp32 speed, so the flag-chosen bf16 path made the pipeline twice as slow as it could be;
on another CPU the same flag was the right signal. A few seconds of timing at a worker's first
start settle it, and the answer is kept in a small JSON file keyed by what decides it: the CPU
model, the thread count, the model and the library versions.

Every candidate handed in here has passed the accuracy check in ``bench/speed.py --check``
(or is exact); timing only ranks paths that may be served.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.speech.engines.base import SAMPLE_RATE

_CPUINFO = Path("/proc/cpuinfo")
# Widest first: the first tier whose flags a CPU has names its family.
_TIERS = (
    ("avx512+amx", {"avx512f", "amx_int8"}),
    ("avx512-vnni", {"avx512f", "avx512_vnni"}),
    ("avx512", {"avx512f"}),
    ("avx2", {"avx2"}),
)
TUNING_VERSION = "1"  # bump when what is measured changes, so old answers are measured again
# A candidate whose first timed run is this much slower than the best first run is not run
# again: it cannot win, and a slow path (emulated bf16, say) would otherwise cost seconds.
ABANDON_RATIO = 1.5
PROBE_S = 8.0  # long enough for steady kernels, short enough for a few seconds of timing


@dataclass(frozen=True, slots=True)
class Timing:
    """The fastest candidate and every candidate's best time in seconds (abandoned: first)."""

    best: str
    seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        return ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in self.seconds.items())

    def milliseconds(self) -> dict[str, float]:
        return {name: round(s * 1000, 1) for name, s in self.seconds.items()}


def measured_here() -> dict[str, Any]:
    """What to keep beside a measured answer about where and when it was measured."""
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": round(os.getloadavg()[0], 2),  # a busy machine skews what was timed
    }


def fastest(
    candidates: Mapping[str, Callable[[], object]],
    repeats: int = 3,
    warm: Collection[str] = (),
) -> Timing:
    """Best-of-``repeats`` wall time per candidate after one untimed warm-up run each.

    The warm-up pays one-off costs (oneDNN primitive creation, ONNX Runtime's first
    allocation) that a worker pays once, not per chunk; candidates in ``warm`` have paid them
    already (a session timed before) and skip it. The timed runs go round-robin, one of
    each candidate per round, so a burst of load from another process slows every candidate
    alike instead of whichever was being timed (a worker starting beside a busy one once
    picked a path 2.6x slower that way). Once the others are abandoned the last one left is not
    timed again: nothing is left to compare it with. Ties go to the earlier candidate, so list
    the preferred (more exact) path first.
    """
    for name, run in candidates.items():
        if name not in warm:
            run()
    seconds = dict.fromkeys(candidates, float("inf"))
    alive = list(candidates)
    for round_ in range(repeats):
        for name in alive:
            started = time.perf_counter()
            candidates[name]()
            seconds[name] = min(seconds[name], time.perf_counter() - started)
        if round_ == 0:
            leader = min(seconds.values())
            alive = [name for name in alive if seconds[name] <= ABANDON_RATIO * leader]
        if len(alive) == 1:
            break
    winner = min(seconds, key=lambda name: seconds[name])
    return Timing(winner, seconds)


def probe_audio(seconds: float = PROBE_S) -> npt.NDArray[np.float32]:
    """Voiced, syllable-paced, slightly noisy audio: activations of speech's range, no file."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 130 + 40 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t))
    noise = 0.03 * np.random.default_rng(0).standard_normal(t.size)
    audio = syllables * voiced + noise
    probe: npt.NDArray[np.float32] = (audio / np.abs(audio).max()).astype(np.float32)
    return probe


def cpu_model(cpuinfo: Path = _CPUINFO) -> str:
    """The CPU's model name: what a measured answer is valid for (with the thread count)."""
    try:
        for line in cpuinfo.read_text(encoding="ascii", errors="ignore").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: Path = _CPUINFO) -> list[str]:
    """The vector-instruction flags worth printing beside a measurement (not deciding it)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="ignore")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            wanted = ("avx", "amx", "vnni", "bf16", "fma")
            return sorted(f for f in line.split(":", 1)[1].split() if f.startswith(wanted))
    return []


def cpu_family(cpuinfo: Path = _CPUINFO) -> str:
    """The CPU's vendor and widest matrix/vector tier, e.g. ``GenuineIntel avx512+amx``.

    An accuracy verdict holds for the kernels ONNX Runtime picks, and it picks them by these
    instruction sets, not by model name: one verdict per family, measured on one of its CPUs.
    """
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="ignore")
    except OSError:
        text = ""
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.splitlines())
        if key.strip() in ("vendor_id", "flags")
    )
    flags = set(fields.get("flags", "").split())
    tier = next((name for name, needs in _TIERS if needs <= flags), "baseline")
    return f"{fields.get('vendor_id') or platform.machine() or 'unknown'} {tier}"


def tuning_key(**parts: object) -> str:
    """A file-name-safe digest of everything the measured answer depends on."""
    text = json.dumps({"version": TUNING_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class TuningCache:
    """Measured answers as small JSON files in one folder; unreadable entries count as none."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"tuning-{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            value = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def save(self, key: str, value: dict[str, Any]) -> None:
        """Written beside and renamed, so two workers starting at once never read half."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tuning-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(value, out, indent=2, sort_keys=True)
            os.replace(tmp, self.path(key))
        finally:
            Path(tmp).unlink(missing_ok=True)
