"""Choose ONNX Runtime's graph optimisation level for the Conformer by timing it, once per machine.

The levels differ in what this CPU makes of them: ``extended`` runs our rewritten graph (float
conv weights, cached GLU outputs) and ``basic`` the graph as shipped, bit-exact with the model's
SDK. Both give the SDK's text on the shared labelled clips on every CPU tried (``bench/speed.py
--engine conformer --check``). ``all`` adds layout transforms whose kernels depend on the CPU:
on a Xeon with AVX512/AMX it changed one word in the 15 clips, so it is no candidate although it
was 1.5x faster there (it stays settable); ``disable`` is never faster than ``basic``, and the
int8 front-end convolution changes words. Each level's session is timed on a few steps of a full
CPU batch, side by side (round-robin, like every measurement here), and the answer is kept in
``cache`` keyed by CPU model, threads, batch rows, the model file and the runtime's version.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.speech.engines.conformer.features import log_mel_from_float
from shared.speech.tuning import (
    TuningCache,
    cpu_model,
    fastest,
    measured_here,
    probe_audio,
    tuning_key,
)

log = logging.getLogger(__name__)
LEVELS = ("extended", "basic")
PROBE_STEPS = 3
SessionFactory = Callable[[str], Any]


def model_key(model: Path, sample: int = 1 << 20) -> str:
    """The model file's size and its first and last MiB: enough to tell two exports apart
    without reading a few hundred MB at every start."""
    digest = hashlib.blake2b(digest_size=12)
    size = model.stat().st_size
    with model.open("rb") as handle:
        digest.update(handle.read(sample))
        handle.seek(max(0, size - sample))
        digest.update(handle.read(sample))
    return f"{size}-{digest.hexdigest()}"


def choose_level(
    build: SessionFactory, cache: TuningCache | None, rows: int, key_parts: dict[str, object]
) -> tuple[str, Any, str]:
    """The level, its session, and ``cached`` or ``measured``."""
    key = tuning_key(cpu=cpu_model(), rows=rows, levels=LEVELS, **key_parts)
    known = cache.load(key) if cache is not None else None
    if known and known.get("level") in LEVELS:
        return known["level"], build(known["level"]), "cached"
    sessions = {level: build(level) for level in LEVELS}  # both held: timed side by side
    timing = fastest(
        {lv: partial(_steps, ses, _probe_feeds(ses, rows)) for lv, ses in sessions.items()}
    )
    log.info(
        "measured the Conformer's ONNX Runtime optimisation levels on %s (%d steps of %d rows): "
        "%s; chose %s",
        cpu_model(),
        PROBE_STEPS,
        rows,
        timing.describe(),
        timing.best,
    )
    if cache is not None:
        cache.save(
            key, {"level": timing.best, "level_ms": timing.milliseconds(), **measured_here()}
        )
    return timing.best, sessions[timing.best], "measured"


def _probe_feeds(session: Any, rows: int) -> dict[str, npt.NDArray[Any]]:
    """A batch of ``rows`` streams' first step on speech-like features, zero caches."""
    features = log_mel_from_float(probe_audio())[:43]
    inputs = {i.name: i for i in session.get_inputs()}

    def zeros(name: str) -> npt.NDArray[Any]:
        dtype = np.float16 if "float16" in inputs[name].type else np.float32
        return np.zeros((rows, *inputs[name].shape[1:]), dtype)

    return {
        "chunk": np.repeat(features[None], rows, axis=0).astype(np.float32),
        "offset": np.zeros((rows, 1), np.int64),
        "att_cache": zeros("att_cache"),
        "cnn_cache": zeros("cnn_cache"),
    }


def _steps(session: Any, feeds: dict[str, npt.NDArray[Any]]) -> None:
    for _ in range(PROBE_STEPS):
        session.run(None, feeds)
