"""silero-vad's per-frame speech probabilities to speech spans, without torch.

silero-vad's own ``get_speech_timestamps_from_probs`` lives in a module that imports torch at
the top, and a torch import is about a second of every ``stt transcribe`` whose engine (the
Conformer, in ONNX Runtime) never needs it. This is that function's hysteresis for the one case
the service uses (no maximum span length), kept sample for sample equal to silero's: the tests
compare both on real speech, so a silero upgrade that changes the rule is caught there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FRAME_16K = 512  # samples per probability at 16 kHz


@dataclass(frozen=True, slots=True)
class SpanRule:
    """silero's parameters, in its units: ``threshold`` opens a span, ``threshold - 0.15``
    closes it after ``min_silence_ms``; spans shorter than ``min_speech_ms`` are dropped and
    the rest widened by ``speech_pad_ms`` (halving the gap where two pads would overlap)."""

    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30
    sample_rate: int = 16000


def spans_from_probs(probs: Sequence[float], length: int, rule: SpanRule) -> list[tuple[int, int]]:
    """(start, end) sample offsets of speech in ``length`` samples, one prob per 512 samples."""
    return _pad(_raw_spans(probs, length, rule), length, rule)


def _raw_spans(probs: Sequence[float], length: int, rule: SpanRule) -> list[list[int]]:
    rate = rule.sample_rate
    min_speech = rate * rule.min_speech_ms / 1000
    min_silence = rate * rule.min_silence_ms / 1000
    low = max(rule.threshold - 0.15, 0.01)
    spans: list[list[int]] = []
    start: int | None = None
    silent_from = 0  # where a possible end began; 0 is "none", as in silero
    for i, prob in enumerate(probs):
        at = FRAME_16K * i
        if prob >= rule.threshold:
            silent_from = 0
            if start is None:
                start = at
                continue
        if start is not None and prob < low:
            silent_from = silent_from or at
            if at - silent_from >= min_silence:
                if silent_from - start > min_speech:
                    spans.append([start, silent_from])
                start, silent_from = None, 0
    if start is not None and length - start > min_speech:
        spans.append([start, length])
    return spans


def _pad(spans: list[list[int]], length: int, rule: SpanRule) -> list[tuple[int, int]]:
    pad = rule.sample_rate * rule.speech_pad_ms / 1000
    for i, span in enumerate(spans):
        if i == 0:
            span[0] = int(max(0, span[0] - pad))
        if i == len(spans) - 1:
            span[1] = int(min(length, span[1] + pad))
            continue
        after = spans[i + 1]
        gap = after[0] - span[1]
        if gap < 2 * pad:
            span[1] += int(gap // 2)
            after[0] = int(max(0, after[0] - gap // 2))
        else:
            span[1] = int(min(length, span[1] + pad))
            after[0] = int(max(0, after[0] - pad))
    return [(s, e) for s, e in spans]
