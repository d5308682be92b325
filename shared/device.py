"""Turn the ``STT_DEVICE`` / ``STT_PRECISION`` strings into a torch device and compute dtype.

Both are resolved once, when an engine loads, so a misconfiguration (``cuda`` on a machine
without a GPU, ``fp16`` on CPU) stops the worker at start-up with a clear message instead of
failing the first job.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from shared.errors import ErrorCode, SttError

_CPUINFO = Path("/proc/cpuinfo")
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceConfigError(SttError, ValueError):
    """A device or precision setting this machine cannot honour.

    An ``SttError`` (code ``model_load_failed``) so the worker reports it like any model load
    failure, and a ``ValueError`` because it is, at heart, a bad configuration value.
    """

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.MODEL_LOAD_FAILED, message)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible else ``cpu``; ``cpu``; ``cuda``; ``cuda:N``.

    Asking for CUDA explicitly never silently falls back to CPU: an operator who set
    ``STT_DEVICE=cuda`` wants to know the GPU is missing, not find jobs ten times slower.
    """
    value = spec.strip().lower()
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if match is None:
        raise DeviceConfigError(
            f"unknown device {spec!r}: use STT_DEVICE=auto, cpu, cuda or cuda:N"
        )
    if not torch.cuda.is_available():
        raise DeviceConfigError(
            f"device {spec!r} requested but CUDA is not available on this machine "
            "(CPU-only torch build or no visible GPU); set STT_DEVICE=cpu or auto"
        )
    index = int(match.group(1)) if match.group(1) is not None else None
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise DeviceConfigError(
            f"device {spec!r} requested but only {count} CUDA device(s) are visible "
            f"(valid: cuda:0..cuda:{count - 1})"
        )
    return torch.device("cuda", index) if index is not None else torch.device("cuda")


def cpu_has_native_bf16(cpuinfo: Path = _CPUINFO) -> bool:
    """Whether the CPU multiplies bf16 matrices in hardware (AVX512-BF16 or AMX-BF16).

    Without those instructions oneDNN emulates bf16 and autocast is *slower* than fp32, so
    ``auto`` must not pick it. Non-Linux hosts (no ``/proc/cpuinfo``) answer False.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="ignore")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not _BF16_CPU_FLAGS.isdisjoint(line.split(":", 1)[-1].split())
    return False


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``STT_PRECISION`` on ``device``; ``None`` means plain fp32.

    ``auto``: on CUDA bf16 when the GPU supports it (Ampere and newer) else fp16; on CPU bf16
    only with native bf16 matrix instructions (see :func:`cpu_has_native_bf16`), else fp32.
    Reduced precision can change a few low-confidence characters; to turn it off and get the
    exact fp32 baseline set ``STT_PRECISION=fp32``. ``fp16`` needs CUDA (CPU fp16 kernels are
    slow), so it is refused on CPU.
    """
    value = spec.strip().lower()
    if value == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if value not in _PRECISIONS:
        raise DeviceConfigError(
            f"unknown precision {spec!r}: use STT_PRECISION=auto, fp32, bf16 or fp16"
        )
    if value == "fp16" and device.type != "cuda":
        raise DeviceConfigError("STT_PRECISION=fp16 needs a CUDA device; on CPU use bf16 or fp32")
    return _PRECISIONS[value]
