"""Turn the ``STT_DEVICE`` / ``STT_PRECISION`` strings into a torch device and compute dtype.

Both are resolved once, when an engine loads, so a misconfiguration (``cuda`` on a machine
without a GPU, ``fp16`` on CPU) stops the worker at start-up with a clear message instead of
failing the first job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ComputePlan:
    """How a wav2vec2 engine computes: ``runtime`` torch or onnx; ``dtype`` is torch's autocast
    dtype (for onnx: the conv feature encoder's, which stays in torch); ``onnx_variant`` is
    ``fp32`` or ``int8`` for the ONNX Runtime transformer, ``None`` with torch."""

    runtime: str
    dtype: torch.dtype | None
    onnx_variant: str | None = None


def resolve_plan(
    runtime: str, precision: str, device: torch.device, onnx_ok: bool = True
) -> ComputePlan:
    """``STT_RUNTIME`` x ``STT_PRECISION`` -> a plan; impossible pairs stop start-up.

    On CPU, ``auto``/``auto`` is the fastest measured path (bench/speed.py): the transformer in
    ONNX Runtime with int8 weights, the conv feature encoder in torch bf16 (fp32 without native
    bf16), falling back to torch when ``onnx``/``onnxruntime`` are not installed. ``fp32``
    under ``auto`` is the exact torch baseline (how to turn every reduced precision off);
    ``int8`` implies ONNX Runtime. ONNX Runtime runs on CPU only.
    """
    value, kind = precision.strip().lower(), runtime.strip().lower()
    if kind not in ("auto", "torch", "onnx"):
        raise DeviceConfigError(f"unknown runtime {runtime!r}: use STT_RUNTIME=auto, torch or onnx")
    wants_onnx = kind == "onnx" or (kind == "auto" and value in ("auto", "int8"))
    if device.type != "cpu" or not wants_onnx:
        if value == "int8":
            raise DeviceConfigError(
                "STT_PRECISION=int8 runs in ONNX Runtime on CPU: set STT_RUNTIME=onnx or auto "
                "and STT_DEVICE=cpu, or pick fp32/bf16"
            )
        if kind == "onnx":
            raise DeviceConfigError("STT_RUNTIME=onnx runs on CPU only; set STT_DEVICE=cpu")
        return ComputePlan("torch", resolve_precision(value, device))
    if value in ("bf16", "fp16"):
        raise DeviceConfigError(
            f"STT_RUNTIME=onnx runs fp32 or int8, not {precision!r}; use STT_RUNTIME=torch for it"
        )
    if not onnx_ok:
        if kind == "onnx" or value == "int8":
            raise DeviceConfigError(
                "ONNX Runtime path needs the onnx and onnxruntime packages; install them "
                "or set STT_RUNTIME=torch"
            )
        return ComputePlan("torch", resolve_precision("auto", device))
    variant = "fp32" if value == "fp32" else "int8"
    encoder_dtype = None if value == "fp32" else resolve_precision("auto", device)
    return ComputePlan("onnx", encoder_dtype, variant)


def cpu_threads(setting: int = 0) -> int:
    """Threads for the model on CPU: ``STT_THREADS`` when set, else every core we may use.

    Torch's default is right in a plain process, but importing some libraries (silero_vad)
    drops it to 1 as a side effect, so the engine sets it explicitly once at load.
    """
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
