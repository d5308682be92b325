"""ONNX Runtime backend for the wav2vec2 transformer: the CPU fast path (issue 3).

Why this split: on a CPU the model is bound by matrix multiplies. ONNX Runtime's dynamically
quantised int8 MatMul runs on VNNI at about twice the rate of bf16, so the transformer (feature
projection, encoder, output head) runs here with int8 weights. The conv feature encoder does
not: dynamic int8 quantises activations per tensor, and a chunk's conv activations span too
wide a range (quiet frames round to zero: 56 % frame agreement with fp32 on real speech, against
97 % with an int8 transformer alone). It stays in PyTorch, in bf16 where the CPU has it.
Attention's activation-by-activation products and the output head stay fp32.

The export happens once per model and variant into a cache folder keyed by the weights' content
(sampled), so a worker pays it (10-20 s for a base-size model) only on its first start.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.errors import ErrorCode, SttError

log = logging.getLogger(__name__)
EXPORT_VERSION = "2"  # bump when the exported graph changes, so old cache entries are ignored
VARIANTS = ("fp32", "int8")
_OPSET = 17
_FP32_NODES = re.compile(r"/lm_head/")  # its rounding error would land on the logits directly


class EncoderLogits(nn.Module):
    """Everything after the conv feature encoder: ``(B, frames, conv_dim)`` -> logits."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        core = self.network.wav2vec2
        hidden, _ = core.feature_projection(features)
        hidden = core.encoder(hidden).last_hidden_state
        if core.adapter is not None:
            hidden = core.adapter(hidden)
        return self.network.lm_head(hidden)


def weights_key(network: nn.Module, head: int = 256) -> str:
    """A key for the export cache from the config and the weights' content.

    Content, because a path or mtime can lie (a model re-saved in place). Only the first
    ``head`` values of each tensor, with its name and shape: from_pretrained maps the weights
    file, and reading all of it (or values scattered through it: each read faults in a whole
    readahead window) makes it resident, +340 MB RSS for a base model for the worker's life.
    Any two trained checkpoints differ in those values.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(network.config.to_json_string().encode())
    for name, tensor in network.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().reshape(-1)[:head].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def export_onnx(network: nn.Module, out: Path) -> None:
    """Export with dynamic batch and time axes (the TorchScript exporter: no onnxscript)."""
    sample = torch.zeros(1, 50, network.config.conv_dim[-1], dtype=torch.float32)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the exporter's deprecation notice, and a trace warning about attention's is_causal,
        # which is False for wav2vec2 whatever the length: nothing an operator can act on
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderLogits(network).eval(),
            (sample,),
            str(out),
            dynamo=False,
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={
                "features": {0: "batch", 1: "frames"},
                "logits": {0: "batch", 1: "frames"},
            },
            opset_version=_OPSET,
        )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 (per output channel) for the weight MatMuls, except ``_FP32_NODES``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and _FP32_NODES.search(n.name)]
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep,
    )


def _atomic(build: Callable[[Path], None], dst: Path) -> None:
    """Build into a temporary file beside ``dst`` and rename, so a reader never sees half."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".tmp")
    os.close(fd)
    try:
        build(Path(tmp))
        os.replace(tmp, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cached_model(network: nn.Module, variant: str, cache_dir: Path) -> Path:
    """The ONNX file for ``variant`` (fp32 or int8), exported on first use only."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ONNX variant {variant!r}: use one of {VARIANTS}")
    import onnxruntime

    versions = f"v{EXPORT_VERSION}-torch{torch.__version__}-ort{onnxruntime.__version__}"
    folder = Path(cache_dir) / f"w2v-{weights_key(network)}-{versions}"
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "encoder.onnx"
    if not fp32.is_file():
        log.info("exporting the wav2vec2 encoder to ONNX under %s (once per model)", folder)
        _atomic(lambda tmp: export_onnx(network, tmp), fp32)
    if variant == "fp32":
        return fp32
    int8 = folder / "encoder.int8.onnx"
    if not int8.is_file():
        log.info("quantising the ONNX encoder to int8 (once per model)")
        _atomic(lambda tmp: quantize_int8(fp32, tmp), int8)
    return int8


class OnnxEncoder:
    """An ONNX Runtime session: ``(batch, frames, conv_dim)`` float32 features -> logits.

    Thread spinning is off: a worker shares its cores with speech detection and the API, and
    a spinning pool then steals time from them (and from itself, measured 10-30 % slower under
    load) for a gain of a few percent on an idle machine.
    """

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, features: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(features, dtype=np.float32)
        return self.session.run(["logits"], {"features": batch})[0]


def onnx_available() -> bool:
    """Whether the export (``onnx``) and the runtime (``onnxruntime``) can both be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_encoder(network: nn.Module, variant: str, cache_dir: Path, threads: int) -> OnnxEncoder:
    """Export (cached) and open the encoder; any failure is MODEL_LOAD_FAILED at start-up."""
    try:
        return OnnxEncoder(cached_model(network, variant, cache_dir), threads)
    except Exception as exc:  # exporter, quantiser and runtime raise many unrelated types
        raise SttError(
            ErrorCode.MODEL_LOAD_FAILED,
            f"could not build the ONNX Runtime {variant} model in {cache_dir}: {exc}. "
            "Set STT_RUNTIME=torch to use PyTorch instead.",
        ) from exc
