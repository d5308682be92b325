"""Choose the Conformer's compute path by timing the admitted ones, once per machine.

A path is ONNX Runtime's graph optimisation level, optionally with the front-end convolution in
int8 (``all+int8``). Which paths may be timed is the accuracy gate's verdict for this CPU family
(``gate.py``, measured offline by ``bench/conformer_gate.py``): speed only ranks paths that
decode no worse than the graph as shipped. Each candidate's session is timed on a few steps of
a full CPU batch, side by side (round-robin, like every measurement here), and the answer is
kept in ``cache`` keyed by CPU model, threads, batch rows, the candidates, the model file and
the runtime's version. ``disable`` is never faster than ``basic`` and is not timed.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from functools import cache, partial
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
PROBE_STEPS = 3
SessionFactory = Callable[[str], Any]


def choose_path(
    build: SessionFactory,
    cache: TuningCache | None,
    rows: int,
    paths: tuple[str, ...],
    key_parts: dict[str, object],
) -> tuple[str, Any, str]:
    """The path, its session, and ``cached`` or ``measured``."""
    key = tuning_key(cpu=cpu_model(), rows=rows, paths=paths, **key_parts)
    known = cache.load(key) if cache is not None else None
    if known and known.get("path") in paths:
        return known["path"], build(known["path"]), "cached"
    if len(paths) == 1:
        return paths[0], build(paths[0]), "only candidate"
    best, session, milliseconds = _duels(build, rows, paths)
    log.info(
        "measured the Conformer's compute paths on %s (%d steps of %d rows): %s; chose %s",
        cpu_model(),
        PROBE_STEPS,
        rows,
        ", ".join(f"{name} {ms:.0f} ms" for name, ms in milliseconds.items()),
        best,
    )
    if cache is not None:
        cache.save(key, {"path": best, "path_ms": milliseconds, **measured_here()})
    return best, session, "measured"


def _duels(
    build: SessionFactory, rows: int, paths: tuple[str, ...]
) -> tuple[str, Any, dict[str, float]]:
    """The fastest path by a run of duels: the leader against each challenger in turn, timed
    side by side, the loser's session freed at once. Holding every candidate's session for one
    round-robin took 1.4 GB for five paths; two at a time stay under the engine's own peak.
    The leader was warmed up in the duel it won and is not warmed again."""
    leader, milliseconds = paths[0], dict[str, float]()
    sessions = {leader: build(leader)}
    warmed: tuple[str, ...] = ()
    for challenger in paths[1:]:
        sessions[challenger] = build(challenger)
        timing = fastest(
            {name: partial(_steps, ses, _probe_feeds(ses, rows)) for name, ses in sessions.items()},
            warm=warmed,
        )
        milliseconds |= timing.milliseconds()
        del sessions[challenger if timing.best == leader else leader]
        _return_freed_memory()
        leader = timing.best
        warmed = (leader,)
    return leader, sessions[leader], milliseconds


def _return_freed_memory() -> None:
    """Hand the discarded session's memory back to the system. glibc keeps large freed blocks
    in its heap for reuse once it has freed a few (its mmap threshold rises), so without this
    each duel's loser stayed resident: a first run grew to 990 MB where one session and its
    stream batch need 700."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator has no such call
        pass


@cache
def _probe_features() -> npt.NDArray[np.float32]:
    """One stream's first block of the probe (the same for every session a measurement times:
    34 ms of synthesis and features, once per candidate and duel before)."""
    features: npt.NDArray[np.float32] = log_mel_from_float(probe_audio())[:43]
    features.flags.writeable = False
    return features


def _probe_feeds(session: Any, rows: int) -> dict[str, npt.NDArray[Any]]:
    """A batch of ``rows`` streams' first step on speech-like features, zero caches."""
    features = _probe_features()
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
