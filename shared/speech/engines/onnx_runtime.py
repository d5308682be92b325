"""ONNX Runtime backend for wav2vec2: the CPU fast path.

Why: on a CPU the model is bound by matrix multiplies. ONNX Runtime's dynamically quantised
int8 MatMul beats both fp32 and bf16 there, so the transformer (feature projection, encoder,
output head) runs here with int8 weights. The conv feature encoder never goes int8: dynamic int8
quantises activations per tensor, and a chunk's conv activations span too wide a range (quiet
frames round to zero: 56 % frame agreement with fp32 on real speech, against 97 % with an int8
transformer alone). Where the CPU multiplies bf16 natively the conv stays in PyTorch, in bf16
(the ``features`` graph); elsewhere the whole model is exported (the ``audio`` graph) and the conv
runs here in fp32, where ONNX Runtime's kernels beat PyTorch's conv1d, GroupNorm and GELU by
~18 % on an AVX2-only EPYC (bench/speed.py). Attention's activation-by-activation products and
the output head stay fp32.

The export happens once per model, graph and variant into a cache folder keyed by the weights'
content (sampled), so a worker pays it (10-20 s for a base-size model) only on its first start.
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
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from shared.errors import ErrorCode, SttError
from shared.speech.engines.base import Float32Array

if TYPE_CHECKING:
    from transformers import Wav2Vec2ForCTC

log = logging.getLogger(__name__)
EXPORT_VERSION = "2"  # bump when the exported graph changes, so old cache entries are ignored
VARIANTS = ("fp32", "int8")
GRAPHS = ("features", "audio")  # what the graph takes: conv features (conv in torch) or audio
_OPSET = 17
_FP32_NODES = re.compile(r"/lm_head/")  # its rounding error would land on the logits directly


class EncoderLogits(nn.Module):
    """``(B, frames, conv_dim)`` conv features -> logits, or with ``with_conv`` the whole model:
    ``(B, samples)`` normalised audio -> logits."""

    def __init__(self, network: Wav2Vec2ForCTC, with_conv: bool = False) -> None:
        super().__init__()
        self.network: Wav2Vec2ForCTC = network
        self.with_conv = with_conv

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        core = self.network.wav2vec2
        features = core.feature_extractor(inputs).transpose(1, 2) if self.with_conv else inputs
        hidden, _ = core.feature_projection(features)
        hidden = core.encoder(hidden).last_hidden_state
        if core.adapter is not None:
            hidden = core.adapter(hidden)
        logits: torch.Tensor = self.network.lm_head(hidden)
        return logits


def weights_key(network: Wav2Vec2ForCTC, head: int = 256) -> str:
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


def export_onnx(network: Wav2Vec2ForCTC, out: Path, graph: str = "features") -> None:
    """Export with dynamic batch and time axes (the TorchScript exporter: no onnxscript)."""
    with_conv = graph == "audio"
    if with_conv:  # one second of audio: any length traces the same graph
        sample = torch.zeros(1, 16_000, dtype=torch.float32)
    else:
        sample = torch.zeros(1, 50, network.config.conv_dim[-1], dtype=torch.float32)
    name = "input_values" if with_conv else "features"
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the exporter's deprecation notice, and a trace warning about attention's is_causal,
        # which is False for wav2vec2 whatever the length: nothing an operator can act on
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderLogits(network, with_conv).eval(),
            (sample,),
            str(out),
            dynamo=False,
            input_names=[name],
            output_names=["logits"],
            dynamic_axes={
                name: {0: "batch", 1: "samples" if with_conv else "frames"},
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


def cached_model(
    network: Wav2Vec2ForCTC, variant: str, cache_dir: Path, graph: str = "features"
) -> Path:
    """The ONNX file for ``variant`` (fp32 or int8) of ``graph``, exported on first use only."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ONNX variant {variant!r}: use one of {VARIANTS}")
    if graph not in GRAPHS:
        raise ValueError(f"unknown ONNX graph {graph!r}: use one of {GRAPHS}")
    import onnxruntime

    versions = f"v{EXPORT_VERSION}-torch{torch.__version__}-ort{onnxruntime.__version__}"
    folder = Path(cache_dir) / f"w2v-{weights_key(network)}-{versions}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = "encoder" if graph == "features" else "model"
    fp32 = folder / f"{stem}.onnx"
    if not fp32.is_file():
        log.info("exporting the wav2vec2 %s to ONNX under %s (once per model)", stem, folder)
        _atomic(lambda tmp: export_onnx(network, tmp, graph), fp32)
    if variant == "fp32":
        return fp32
    int8 = folder / f"{stem}.int8.onnx"
    if not int8.is_file():
        log.info("quantising the ONNX encoder to int8 (once per model)")
        _atomic(lambda tmp: quantize_int8(fp32, tmp), int8)
    return int8


class OnnxEncoder:
    """An ONNX Runtime session: ``(batch, frames, conv_dim)`` float32 features -> logits, or
    (``takes_audio``) ``(batch, samples)`` normalised audio -> logits.

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
        self.input_name = self.session.get_inputs()[0].name
        self.takes_audio = self.input_name == "input_values"

    def logits(self, inputs: Float32Array) -> Float32Array:
        batch = np.ascontiguousarray(inputs, dtype=np.float32)
        logits: Float32Array = self.session.run(["logits"], {self.input_name: batch})[0]
        return logits


def onnx_available() -> bool:
    """Whether the export (``onnx``) and the runtime (``onnxruntime``) can both be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def load_encoder(
    network: Wav2Vec2ForCTC, variant: str, cache_dir: Path, threads: int, graph: str = "features"
) -> OnnxEncoder:
    """Export (cached) and open the session; any failure is MODEL_LOAD_FAILED at start-up."""
    try:
        return OnnxEncoder(cached_model(network, variant, cache_dir, graph), threads)
    except Exception as exc:  # exporter, quantiser and runtime raise many unrelated types
        raise SttError(
            ErrorCode.MODEL_LOAD_FAILED,
            f"could not build the ONNX Runtime {variant} model in {cache_dir}: {exc}. "
            "Set STT_RUNTIME=torch to use PyTorch instead.",
        ) from exc
