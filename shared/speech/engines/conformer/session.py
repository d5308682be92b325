"""The ONNX Runtime session of a streaming Conformer CTC graph: providers, options, signature.

The graph stores every weight as int8 behind a ``DequantizeLinear``. For the MatMuls that is
what ONNX Runtime wants (it fuses them into int8 kernels), but a ``Conv`` whose weight comes out
of a ``DequantizeLinear`` is not a constant to ONNX Runtime: the weight is dequantized and
re-laid-out on every call, and the convolution cannot use its pre-packed blocked kernels. At
optimisation levels above ``basic`` we hand it those weights already dequantized (the same
float values: dequantization is exact in float32), which measured 12-20 % less time per step
on 2 threads. The convolution modules are also rewritten to cache their GLU outputs instead
of recomputing them (``rewrite.py``), and with ``int8`` the front end's large
convolution runs as an int8 product like the linear layers (``quantize.py``).
``disable`` and ``basic`` keep the graph as it ships, for a bit-exact comparison with the
model's own SDK. The rewritten graph is kept in ``graph_dir`` once built: the rewrite costs
about a second at every start otherwise (load, fold, rewrite, serialise a 70 MB graph).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from shared.speech.device import DeviceConfigError
from shared.speech.engines.conformer.dequantize import dequantized
from shared.speech.engines.conformer.gate import REWRITTEN, split_path
from shared.speech.engines.conformer.layernorm import fuse_layer_norms
from shared.speech.engines.conformer.positions import project_positions
from shared.speech.engines.conformer.prune import drop_unused
from shared.speech.engines.conformer.quantize import int8_front_conv
from shared.speech.engines.conformer.rewrite import cache_glu_outputs
from shared.speech.models.wheel_fetch import write_atomic

INPUTS = ("chunk", "offset", "att_cache", "cnn_cache")
OUTPUTS = ("output", "r_att_cache", "r_cnn_cache")
OPT_LEVELS = ("disable", "basic", "extended", "all")
REWRITE_VERSION = "2"  # bump when the rewrites change, so kept graphs are built again
log = logging.getLogger(__name__)


def onnx_providers(device: str, available: list[str]) -> tuple[list[object], str]:
    """Execution providers for a ``STT_DEVICE`` value, and the device name to report.

    Like the torch engines, an explicit ``cuda`` never falls back to the CPU silently.
    """
    value = device.strip().lower()
    has_cuda = "CUDAExecutionProvider" in available
    if value == "cpu" or (value == "auto" and not has_cuda):
        return ["CPUExecutionProvider"], "cpu"
    match = re.fullmatch(r"auto|cuda(?::(\d+))?", value)
    if match is None:
        raise DeviceConfigError(
            f"unknown device {device!r}: use STT_DEVICE=auto, cpu, cuda or cuda:N"
        )
    if not has_cuda:
        raise DeviceConfigError(
            f"device {device!r} requested but ONNX Runtime has no CUDA provider here "
            "(install onnxruntime-gpu, or set STT_DEVICE=cpu or auto)"
        )
    index = int(match.group(1) or 0)
    return [
        ("CUDAExecutionProvider", {"device_id": index}),
        "CPUExecutionProvider",
    ], f"cuda:{index}"


def fold_conv_weights(model: Any) -> int:
    """Replace each constant ``DequantizeLinear`` that feeds only ``Conv`` nodes by its float
    result; returns how many were folded. ``model`` is an ``onnx.ModelProto``, changed in place."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    kept, folded = [], []
    for node in graph.node:
        foldable = (
            node.op_type == "DequantizeLinear"
            and all(name in constants for name in node.input)
            and consumers.get(node.output[0]) == {"Conv"}
        )
        if not foldable:
            kept.append(node)
            continue
        weights = numpy_helper.to_array(constants[node.input[0]])
        folded.append(
            numpy_helper.from_array(dequantized(node, weights, constants), node.output[0])
        )
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded)
    drop_unused(graph)
    return len(folded)


def make_session(
    model: Path,
    providers: list[object],
    threads: int,
    level: str,
    int8: bool = False,
    graph_dir: Path | None = None,
) -> Any:
    """An ``InferenceSession`` over ``model``; above ``basic``, with the rewrites above."""
    import onnxruntime as ort

    if level not in OPT_LEVELS:
        raise ValueError(f"unknown optimization level {level!r}: {OPT_LEVELS}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Worker threads sleep between operators instead of spinning: the pipeline's own thread
    # (audio, VAD) and any neighbour share these cores, and a spinning pool took 1.7-2.1x the
    # wall time of a sleeping one for 60 s of speech on a busy 2-core Xeon (same text).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # the folded graph leaves unused-initializer warnings
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    if level in ("disable", "basic"):
        return ort.InferenceSession(str(model), options, providers=providers)
    graph = rewritten_graph(model, int8, graph_dir)
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, options, providers=providers)


def prepare_graphs(model: Path, paths: tuple[str, ...], graph_dir: Path | None) -> None:
    """Build and keep the rewritten graphs that ``paths`` need before any session opens. A
    rewrite holds the graph about twice over (some 400 MB with the positional tables); done
    while the start-up measurement held its sessions, a first start went past 1 GB."""
    if graph_dir is None:
        return
    for int8 in sorted({int8 for level, int8 in map(split_path, paths) if level in REWRITTEN}):
        rewritten_graph(model, int8, graph_dir)


def rewritten_graph(model: Path, int8: bool, graph_dir: Path | None) -> bytes | Path:
    """The rewritten graph: the kept file when there is one, else built (and kept)."""
    kept = None
    if graph_dir is not None:
        name = f"conformer-{model_key(model)}-r{REWRITE_VERSION}-{'int8' if int8 else 'float'}"
        kept = graph_dir / f"{name}.onnx"
        if kept.is_file():
            return kept
    import onnx

    proto = onnx.load(str(model))
    # The first two read shapes from shape inference, which copies the graph: they run before
    # the positional tables add 108 MB to it. The int8 rewrite wants the weights still int8.
    fuse_layer_norms(proto)
    if int8:
        int8_front_conv(proto)
    project_positions(proto)
    fold_conv_weights(proto)
    cache_glu_outputs(proto)
    graph: bytes = proto.SerializeToString()
    del proto
    if kept is None:
        return graph
    kept.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(kept, graph)
    _drop_older_versions(kept)
    return kept  # the session reads the file: the bytes are not held while it loads


def _drop_older_versions(kept: Path) -> None:
    """Graphs of earlier rewrite versions of the same model and precision: nothing reads them
    again, and each is some 100-200 MB of the cache."""
    key, _version, kind = kept.stem.rsplit("-", 2)
    for old in kept.parent.glob(f"{key}-r*-{kind}.onnx"):
        if old != kept:
            old.unlink(missing_ok=True)


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


def session_device(session: Any, device_name: str, requested: str) -> str:
    """The device the session really runs on, which may not be the one asked for.

    ONNX Runtime lists the CUDA provider whenever onnxruntime-gpu is installed, but when the
    CUDA or cuDNN libraries cannot be loaded it quietly runs the graph on the CPU instead. An
    explicit ``cuda`` then stops start-up (ten times slower jobs are not what was asked for);
    ``auto`` carries on, on the CPU, and says so.
    """
    if not device_name.startswith("cuda") or "CUDAExecutionProvider" in session.get_providers():
        return device_name
    if requested.strip().lower() != "auto":
        raise DeviceConfigError(
            f"device {requested!r} requested but ONNX Runtime could not start its CUDA provider "
            "(CUDA or cuDNN libraries missing?) and fell back to the CPU; fix the CUDA install "
            "or set STT_DEVICE=cpu or auto"
        )
    log.warning("ONNX Runtime could not start its CUDA provider; the Conformer runs on the CPU")
    return "cpu"


def conv_precision(precision: str) -> bool:
    """Whether ``STT_PRECISION`` forces the front-end convolution to int8 (a clear error for a
    value this engine cannot run). ``auto`` forces nothing: the accuracy gate's admitted paths,
    int8 ones among them where they decode no worse, are what the start-up measurement times;
    ``fp32`` keeps the float convolution, which reproduces the SDK's text.
    """
    value = precision.strip().lower()
    if value not in ("auto", "fp32", "int8"):
        raise DeviceConfigError(
            f"the Conformer engine runs STT_PRECISION=auto, fp32 or int8, not {precision!r}"
        )
    return value == "int8"


def check_signature(session: Any, model: Path) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """Cache shapes and unit count, or a clear error for a graph of another signature."""
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if set(inputs) != set(INPUTS) or set(outputs) != set(OUTPUTS):
        raise ValueError(
            f"{model} is not a streaming CTC graph with inputs {INPUTS} and outputs {OUTPUTS} "
            f"(it has {sorted(inputs)} -> {sorted(outputs)})"
        )
    if list(inputs["chunk"][1:]) != [43, 80] or list(outputs["output"][1:2]) != [10]:
        raise ValueError(f"{model}: chunk must be [B,43,80] and output [B,10,units]")
    return tuple(inputs["att_cache"][1:]), tuple(inputs["cnn_cache"][1:]), outputs["output"][2]
