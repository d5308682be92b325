"""Turn the ``STT_DEVICE`` / ``STT_PRECISION`` strings into a torch device and compute dtype.

Both are resolved once, when an engine loads, so a misconfiguration (``cuda`` on a machine
without a GPU, ``fp16`` on CPU) stops the worker at start-up with a clear message instead of
failing the first job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ErrorCode, SttError

if TYPE_CHECKING:
    import torch

# torch's dtype attribute per precision name; torch itself is imported only where a device or
# dtype is resolved, because the ONNX Runtime engines (the Conformer) never need it and its
# import is a second of every `stt transcribe`.
_PRECISIONS = {"fp32": None, "bf16": "bfloat16", "fp16": "float16"}


def _dtype(name: str) -> torch.dtype | None:
    import torch

    attr = _PRECISIONS[name]
    return None if attr is None else getattr(torch, attr)


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
    import torch

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


def resolve_precision(spec: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``STT_PRECISION`` on ``device``; ``None`` means plain fp32.

    ``auto``: on CUDA bf16 when the GPU supports it (Ampere and newer) else fp16; on CPU fp32
    here, because whether bf16 pays on a CPU is measured per component (``resolve_choices``),
    not read off its flags. Reduced precision can change a few low-confidence characters; to
    turn it off and get the exact fp32 baseline set ``STT_PRECISION=fp32``. ``fp16`` needs
    CUDA (CPU fp16 kernels are slow), so it is refused on CPU.
    """
    import torch

    value = spec.strip().lower()
    if value == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    if value not in _PRECISIONS:
        raise DeviceConfigError(
            f"unknown precision {spec!r}: use STT_PRECISION=auto, fp32, bf16 or fp16"
        )
    if value == "fp16" and device.type != "cuda":
        raise DeviceConfigError("STT_PRECISION=fp16 needs a CUDA device; on CPU use bf16 or fp32")
    return _dtype(value)


# What each wav2vec2 component may run on a CPU, the more exact paths first (a timing tie goes
# to the earlier). The conv front end never runs int8: dynamic int8 kept 56 % and static,
# calibrated int8 47 % frame agreement with fp32 on real speech (bench/static_int8.py), far
# under the 97 % asked of it; every path listed here passes ``bench/speed.py --check`` (95 %).
CONV_PATHS: tuple[str, ...] = ("onnx-fp32", "torch-fp32", "torch-bf16")
TRANSFORMER_PATHS: tuple[str, ...] = ("onnx-fp32", "torch-fp32", "onnx-int8", "torch-bf16")


@dataclass(frozen=True, slots=True)
class ComputePlan:
    """Where the conv front end and the transformer run, as ``runtime-precision`` paths
    (``torch-bf16``, ``onnx-int8``...), and how that was decided: ``fixed`` (one path was
    possible), ``measured`` (timed at this start) or ``cached`` (timed at an earlier start)."""

    conv: str
    transformer: str
    how: str = "fixed"

    @staticmethod
    def runtime_of(path: str) -> str:
        return path.split("-", 1)[0]

    @staticmethod
    def dtype_of(path: str) -> torch.dtype | None:
        """torch's autocast dtype for a torch path; ``None`` is plain fp32."""
        return _dtype(path.split("-", 1)[1])

    @property
    def whole_torch(self) -> bool:
        """Both parts in torch at one precision: the model's own forward (with its mask)."""
        return self.conv == self.transformer and self.runtime_of(self.conv) == "torch"

    def describe(self) -> str:
        return f"conv {self.conv}, transformer {self.transformer} ({self.how})"


@dataclass(frozen=True, slots=True)
class ComputeChoices:
    """The paths each component may take here; one of each leaves nothing to measure."""

    conv: tuple[str, ...]
    transformer: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        return [(conv, transformer) for conv in self.conv for transformer in self.transformer]

    def only(self) -> ComputePlan | None:
        if len(self.conv) == 1 and len(self.transformer) == 1:
            return ComputePlan(self.conv[0], self.transformer[0])
        return None


def resolve_choices(
    runtime: str, precision: str, device: torch.device, onnx_ok: bool = True
) -> ComputeChoices:
    """``STT_RUNTIME`` x ``STT_PRECISION`` -> the paths to measure; impossible pairs stop
    start-up.

    On CPU ``auto``/``auto`` measures every path; ``STT_RUNTIME`` narrows the transformer (and
    with ``torch`` the conv) to that runtime, ``STT_PRECISION`` narrows both to a precision
    (``int8`` means the transformer; the conv stays float). ``fp32`` under ``auto`` or
    ``torch`` is the exact torch baseline: how to turn every reduced precision off. On a GPU
    nothing is measured: torch at ``STT_PRECISION`` (``auto``: bf16 where supported, else fp16).
    """
    value, kind = precision.strip().lower(), runtime.strip().lower()
    if kind not in ("auto", "torch", "onnx"):
        raise DeviceConfigError(f"unknown runtime {runtime!r}: use STT_RUNTIME=auto, torch or onnx")
    if value not in (*_PRECISIONS, "auto", "int8"):
        raise DeviceConfigError(
            f"unknown precision {precision!r}: use STT_PRECISION=auto, fp32, bf16, fp16 or int8"
        )
    if device.type != "cpu" or value in ("bf16", "fp16") or (kind == "torch" and value == "int8"):
        _refuse_off_cpu_paths(kind, value, device)
        path = "torch-" + _dtype_name(resolve_precision(value, device))
        return ComputeChoices((path,), (path,))
    if value == "fp32" and kind != "onnx":
        return ComputeChoices(("torch-fp32",), ("torch-fp32",))
    conv, transformer = _narrow(kind, value)
    if not onnx_ok:
        if kind == "onnx" or value == "int8":
            raise DeviceConfigError(
                "ONNX Runtime path needs the onnx and onnxruntime packages; install them "
                "or set STT_RUNTIME=torch"
            )
        conv = tuple(p for p in conv if p.startswith("torch"))
        transformer = tuple(p for p in transformer if p.startswith("torch"))
    return ComputeChoices(conv, transformer)


def _narrow(kind: str, value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    conv, transformer = CONV_PATHS, TRANSFORMER_PATHS
    if kind != "auto":
        transformer = tuple(p for p in transformer if p.startswith(kind))
    if kind == "torch":
        conv = tuple(p for p in conv if p.startswith("torch"))
    if value == "int8":
        transformer = ("onnx-int8",)
    elif value == "fp32":
        conv = tuple(p for p in conv if p.endswith("fp32"))
        transformer = tuple(p for p in transformer if p.endswith("fp32"))
    return conv, transformer


def _refuse_off_cpu_paths(kind: str, value: str, device: torch.device) -> None:
    if value == "int8":
        raise DeviceConfigError(
            "STT_PRECISION=int8 runs in ONNX Runtime on CPU: set STT_RUNTIME=onnx or auto "
            "and STT_DEVICE=cpu, or pick fp32/bf16"
        )
    if kind == "onnx" and device.type != "cpu":
        raise DeviceConfigError("STT_RUNTIME=onnx runs on CPU only; set STT_DEVICE=cpu")
    if kind == "onnx":
        raise DeviceConfigError(
            f"STT_RUNTIME=onnx runs fp32 or int8, not {value!r}; use STT_RUNTIME=torch for it"
        )


def _dtype_name(dtype: torch.dtype | None) -> str:
    return next(name for name in _PRECISIONS if _dtype(name) == dtype)


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
