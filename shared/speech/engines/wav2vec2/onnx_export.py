"""ONNX Runtime backend for wav2vec2: the CPU paths that beat PyTorch on some machines.

The model is exported as two graphs, so each part can run where it is fastest on this CPU
(``tuning.py`` beside it times them): the conv front end (``conv``:
normalised audio -> conv features) and the transformer (``features``: conv features ->
logits; feature projection, encoder and output head). The transformer also comes with
dynamically quantised int8 weights: on a CPU the model is bound by matrix multiplies and ONNX
Runtime's int8 MatMul is often the fastest there. The conv never goes int8: dynamic int8
quantises activations per tensor, and a chunk's conv activations span too wide a range (quiet
frames round to zero: 56 % frame agreement with fp32 on real speech, against 97 % with an int8
transformer alone); static calibrated int8 did no better (bench/static_int8.py). Attention's
activation-by-activation products and the output head stay fp32.

The export happens once per model, graph and variant into a cache folder keyed by the weights'
content (sampled), so a worker pays it (10-20 s a graph for a base-size model) only on its
first start.
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

from shared.speech.engines.base import Float32Array

if TYPE_CHECKING:
    from transformers import Wav2Vec2ForCTC

log = logging.getLogger(__name__)
EXPORT_VERSION = "3"  # bump when the exported graph changes, so old cache entries are ignored
VARIANTS = ("fp32", "int8")
GRAPHS = ("features", "conv")  # the transformer (conv features in) or the conv (audio in)
_OPSET = 17
_FP32_NODES = re.compile(r"/lm_head/")  # its rounding error would land on the logits directly


class ConvFeatures(nn.Module):
    """``(B, samples)`` normalised audio -> ``(B, frames, conv_dim)`` conv features.

    It holds the network's own conv module (not the network), so a copy of it at another
    precision copies only the conv's weights."""

    def __init__(self, network: Wav2Vec2ForCTC) -> None:
        super().__init__()
        self.conv = network.wav2vec2.feature_extractor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.conv(inputs)
        return features.transpose(1, 2)


class EncoderLogits(nn.Module):
    """``(B, frames, conv_dim)`` conv features -> logits: everything after the conv, as the
    network's own modules (so a copy of this copies the transformer only)."""

    def __init__(self, network: Wav2Vec2ForCTC) -> None:
        super().__init__()
        core = network.wav2vec2
        self.projection, self.encoder = core.feature_projection, core.encoder
        self.adapter, self.head = core.adapter, network.lm_head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.projection(features)
        hidden = self.encoder(hidden).last_hidden_state
        if self.adapter is not None:
            hidden = self.adapter(hidden)
        logits: torch.Tensor = self.head(hidden)
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
    conv = graph == "conv"
    if conv:  # one second of audio: any length traces the same graph
        sample = torch.zeros(1, 16_000, dtype=torch.float32)
    else:
        sample = torch.zeros(1, 50, network.config.conv_dim[-1], dtype=torch.float32)
    module = ConvFeatures(network) if conv else EncoderLogits(network)
    name, output = ("input_values", "features") if conv else ("features", "logits")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the exporter's deprecation notice, and a trace warning about attention's is_causal,
        # which is False for wav2vec2 whatever the length: nothing an operator can act on
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (sample,),
            str(out),
            dynamo=False,
            input_names=[name],
            output_names=[output],
            dynamic_axes={
                name: {0: "batch", 1: "samples" if conv else "frames"},
                output: {0: "batch", 1: "frames"},
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


def model_folder(network: Wav2Vec2ForCTC, cache_dir: Path) -> Path:
    """The cache folder of one model's exports (and of what was measured with them)."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:  # torch paths only: still a folder for what was measured
        ort_version = "none"
    versions = f"v{EXPORT_VERSION}-torch{torch.__version__}-ort{ort_version}"
    return Path(cache_dir) / f"w2v-{weights_key(network)}-{versions}"


def cached_model(
    network: Wav2Vec2ForCTC, variant: str, cache_dir: Path, graph: str = "features"
) -> Path:
    """The ONNX file for ``variant`` (fp32 or int8) of ``graph``, exported on first use only."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ONNX variant {variant!r}: use one of {VARIANTS}")
    if graph not in GRAPHS:
        raise ValueError(f"unknown ONNX graph {graph!r}: use one of {GRAPHS}")
    folder = model_folder(network, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = "encoder" if graph == "features" else "conv"
    fp32 = folder / f"{stem}.onnx"
    if not fp32.is_file():
        log.info("exporting the wav2vec2 %s to ONNX under %s (once per model)", stem, folder)
        _atomic(lambda tmp: export_onnx(network, tmp, graph), fp32)
    if variant == "fp32":
        return fp32
    if graph == "conv":
        raise ValueError("the conv graph runs fp32 only: int8 fails its accuracy check")
    int8 = folder / f"{stem}.int8.onnx"
    if not int8.is_file():
        log.info("quantising the ONNX encoder to int8 (once per model)")
        _atomic(lambda tmp: quantize_int8(fp32, tmp), int8)
    return int8


class OnnxEncoder:
    """An ONNX Runtime session over one exported graph: the transformer (features -> logits)
    or the conv (``takes_audio``: normalised audio -> features).

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
        self.output_name = self.session.get_outputs()[0].name
        self.takes_audio = self.input_name == "input_values"

    def __call__(self, inputs: Float32Array) -> Float32Array:
        batch = np.ascontiguousarray(inputs, dtype=np.float32)
        out: Float32Array = self.session.run([self.output_name], {self.input_name: batch})[0]
        return out


def onnx_available() -> bool:
    """Whether the export (``onnx``) and the runtime (``onnxruntime``) can both be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
