"""The two halves of a wav2vec2 CTC model as callables that each run on one path.

A path is ``runtime-precision`` (``torch-bf16``, ``onnx-int8``...): the conv front end maps
normalised audio ``(B, samples)`` to conv features ``(B, frames, conv_dim)``, the transformer
maps those to logits ``(B, frames, vocab)``, both as float32 numpy arrays. Splitting the model
there lets each half run where this CPU is fastest for it: the conv is convolutions and group
norms, the transformer is matrix multiplies, and the fastest runtime for one is not always the
fastest for the other.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shared.speech.device import ComputePlan
from shared.speech.engines.base import Float32Array
from shared.speech.engines.wav2vec2.onnx_export import (
    ConvFeatures,
    EncoderLogits,
    OnnxEncoder,
    cached_model,
)

if TYPE_CHECKING:
    from transformers import Wav2Vec2ForCTC

Stage = Callable[[Float32Array], Float32Array]


class ChannelsLastConv(torch.nn.Module):
    """A ``Conv1d`` run as a ``1 x k`` channels-last ``Conv2d``, same weights.

    In bf16, oneDNN's blocked kernels (which use the CPU's matrix units) take that layout and
    not conv1d's: 3x faster for wav2vec2's 512-channel layers on 2 threads of a Xeon with AMX.
    In fp32 it gained nothing there, so fp32 keeps the model's own layers."""

    def __init__(self, conv: torch.nn.Conv1d) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            (1, conv.kernel_size[0]),
            stride=(1, conv.stride[0]),
            bias=conv.bias is not None,
        )
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight.unsqueeze(2))
            if conv.bias is not None and self.conv.bias is not None:
                self.conv.bias.copy_(conv.bias)
        self.conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        planar = hidden.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        out: torch.Tensor = self.conv(planar).squeeze(2)
        return out


class UnfoldConv(torch.nn.Module):
    """A one-input-channel ``Conv1d`` (wav2vec2's first layer, on raw audio) as a matrix
    product with the audio's strided windows: torch's bf16 conv1d does that shape at a few
    GFLOP/s (70 ms for 8 s of audio), the product in 2 ms. Written so the product lands in
    ``(B, channels, frames)`` order: a transposing copy after it cost 45 ms."""

    def __init__(self, conv: torch.nn.Conv1d) -> None:
        super().__init__()
        self.kernel, self.stride = conv.kernel_size[0], conv.stride[0]
        self.weight = torch.nn.Parameter(conv.weight.detach().reshape(conv.out_channels, -1))
        self.bias = None if conv.bias is None else torch.nn.Parameter(conv.bias.detach())

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        windows = audio.squeeze(1).unfold(-1, self.kernel, self.stride).transpose(1, 2)
        out = self.weight @ windows
        return out if self.bias is None else out + self.bias[:, None]


def bf16_conv(module: ConvFeatures) -> ConvFeatures:
    """A bf16 copy of the conv front end with each convolution in its fast bf16 form."""
    copied = copy.deepcopy(module)
    for layer in copied.conv.conv_layers:
        conv = layer.conv
        assert isinstance(conv, torch.nn.Conv1d)  # wav2vec2's feature encoder layers
        layer.conv = ChannelsLastConv(conv) if conv.in_channels > 1 else UnfoldConv(conv)
    return copied.to(torch.bfloat16)


class TorchStage:
    """One half of the torch model on the CPU; the other half's weights may be gone.

    bf16 runs on a bf16 copy of the half's weights, not under autocast: autocast re-casts
    every weight on every call, which made the whole pipeline 1.5x slower than fp32 on a Xeon
    whose bf16 matmul (AMX) is 7x faster than its fp32 one; the copy is made once."""

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype | None) -> None:
        converted = dtype is None or next(module.parameters()).dtype == dtype
        self.module = module if converted else copy.deepcopy(module).to(dtype)
        # Weights that ask for gradients send some products down a slow path even under
        # inference_mode (the first conv layer: 48 ms instead of 2).
        self.module.requires_grad_(False)
        self.dtype = dtype or torch.float32

    def __call__(self, inputs: Float32Array) -> Float32Array:
        values = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        with torch.inference_mode():
            out = self.module(values.to(self.dtype))
        return np.ascontiguousarray(out.float().numpy())


def build_stage(
    network: Wav2Vec2ForCTC, component: str, path: str, cache_dir: Path, threads: int
) -> Stage:
    """The ``component`` (``conv`` or ``transformer``) on ``path``; ONNX graphs are exported
    into ``cache_dir`` on first use."""
    runtime, variant = path.split("-", 1)
    if runtime == "onnx":
        graph = "conv" if component == "conv" else "features"
        return OnnxEncoder(cached_model(network, variant, cache_dir, graph), threads)
    dtype = ComputePlan.dtype_of(path)
    if component == "transformer":
        return TorchStage(EncoderLogits(network).eval(), dtype)
    conv = ConvFeatures(network)
    return TorchStage((bf16_conv(conv) if dtype == torch.bfloat16 else conv).eval(), dtype)


def free_unused(network: Wav2Vec2ForCTC, plan: ComputePlan) -> None:
    """Move to ``meta`` the fp32 torch weights no chosen path runs on (ONNX Runtime and bf16
    stages hold their own): peak memory matters on long files, and the transformer alone is
    most of a base model's 360 MB."""
    core = network.wav2vec2
    if plan.transformer != "torch-fp32":
        for module in (core.feature_projection, core.encoder, core.adapter, network.lm_head):
            if module is not None:
                module.to("meta")
    if plan.conv != "torch-fp32":
        core.feature_extractor.to("meta")
