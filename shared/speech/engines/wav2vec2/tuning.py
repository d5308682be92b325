"""Choose where each half of a wav2vec2 model runs on this CPU by timing it, once per machine.

``resolve_choices`` lists the paths the settings allow; when more than one is left for a
component, each is timed on a few seconds of synthetic speech-like audio (content does not
change the cost of a dense model) and the fastest wins. The conv is timed alone, the
transformer on the reference conv's features. The answer is kept beside the model's ONNX
exports, keyed by CPU model, thread count, the allowed paths and library versions, so later
starts on the same kind of machine read it instead of measuring.

Before it is timed, each path's output on the probe is compared with torch fp32 and a path
that strays is dropped. That guard catches a broken kernel on an unusual CPU; the accuracy a
path must reach on real speech is checked by ``bench/speed.py --check``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from shared.speech.device import ComputeChoices, ComputePlan
from shared.speech.engines.base import SAMPLE_RATE, Float32Array
from shared.speech.engines.wav2vec2.stages import Stage
from shared.speech.tuning import Timing, TuningCache, cpu_model, fastest, measured_here

log = logging.getLogger(__name__)
# Probe guards, against torch fp32: conv features' relative L2 error, logits' argmax agreement.
MAX_CONV_ERROR = 0.05
MIN_AGREEMENT = 0.9
StageFactory = Callable[[str, str], Stage]


def choose_plan(
    choices: ComputeChoices, build: StageFactory, values: Float32Array, cache: TuningCache, key: str
) -> ComputePlan:
    """A cached measurement for these choices, else a new one (saved)."""
    known = cache.load(key)
    if known and (known.get("conv"), known.get("transformer")) in choices.pairs():
        plan = ComputePlan(known["conv"], known["transformer"], "cached")
        log.info("wav2vec2 compute paths from an earlier measurement: %s", plan.describe())
        return plan
    plan, record = measure(choices, build, values)
    cache.save(key, record)
    return plan


def measure(
    choices: ComputeChoices, build: StageFactory, values: Float32Array
) -> tuple[ComputePlan, dict[str, Any]]:
    """Time the allowed paths of each half; the plan and what to remember of the run."""
    reference = build("conv", "torch-fp32")(values)
    expected = build("transformer", "torch-fp32")(reference).argmax(-1)
    conv_ok: list[str] = []
    transformer_ok: list[str] = []
    dropped: dict[str, str] = {}
    for path in choices.conv:
        error = _relative_error(build("conv", path)(values), reference)
        if error <= MAX_CONV_ERROR:
            conv_ok.append(path)
        else:
            dropped[f"conv {path}"] = f"features off by {error:.1%}"
    for path in choices.transformer:
        agreement = float((build("transformer", path)(reference).argmax(-1) == expected).mean())
        if agreement >= MIN_AGREEMENT:
            transformer_ok.append(path)
        else:
            dropped[f"transformer {path}"] = f"{agreement:.1%} frame agreement"
    conv = _time(conv_ok or ["torch-fp32"], lambda p: build("conv", p), values)
    transformer = _time(
        transformer_ok or ["torch-fp32"], lambda p: build("transformer", p), reference
    )
    plan = ComputePlan(conv.best, transformer.best, "measured")
    cpu = cpu_model()
    log.info(
        "measured wav2vec2 compute paths on %s (%.0f s probe): conv %s; transformer %s; %s%s",
        cpu,
        len(values[0]) / SAMPLE_RATE,
        conv.describe(),
        transformer.describe(),
        plan.describe(),
        f"; dropped {dropped}" if dropped else "",
    )
    record = {
        "conv": plan.conv,
        "transformer": plan.transformer,
        "conv_ms": conv.milliseconds(),
        "transformer_ms": transformer.milliseconds(),
        "dropped": dropped,
        **measured_here(),
    }
    return plan, record


def _time(paths: list[str], build: Callable[[str], Stage], inputs: Float32Array) -> Timing:
    return fastest({path: partial(build(path), inputs) for path in paths})


def _relative_error(ours: Float32Array, reference: Float32Array) -> float:
    scale = float(np.linalg.norm(reference)) or 1.0
    return float(np.linalg.norm(ours - reference)) / scale
