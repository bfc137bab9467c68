"""Small layers shared by the blocks: normalisation, gating and the NAFNet-style block.

Every layer here is plain tensor algebra so it exports to ONNX and runs under TensorRT in
reduced precision (NAFNet's custom-autograd LayerNorm2d does neither).
"""
from __future__ import annotations

import torch
from torch import nn


class LayerNorm2d(nn.Module):
    """Channel-wise LayerNorm of an NCHW map, safe in fp16.

    LayerNorm is invariant to a positive per-pixel scale, so the input is first divided by its
    per-pixel largest magnitude: the squares then stay below 1 and cannot overflow fp16's 65504,
    which is how a plain LayerNorm breaks restoration nets under TensorRT fp16.
    """

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / (x.detach().abs().amax(dim=1, keepdim=True) + self.eps)
        mean = x.mean(dim=1, keepdim=True)
        centred = x - mean
        var = centred.pow(2).mean(dim=1, keepdim=True)
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias


class SimpleGate(nn.Module):
    """Splits channels in two halves and multiplies them: a nonlinearity without activations."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


def conv1x1(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, bias=bias)


class ConvFFN(nn.Module):
    """Gated feed-forward network with a depthwise 3x3 conv, which adds locality."""

    def __init__(self, channels: int, expand: int = 2):
        super().__init__()
        hidden = channels * expand
        self.body = nn.Sequential(
            conv1x1(channels, 2 * hidden),
            nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden),
            SimpleGate(),
            conv1x1(hidden, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class NAFBlock(nn.Module):
    """The encoder/decoder block: activation-free spatial mixing plus a gated channel FFN.

    It has no normalisation layer: a channel LayerNorm on NCHW maps costs ONNX Runtime about
    as much as all the block's convolutions together at half resolution (measured: 44 of
    103 ms per 640x480 frame). Residual branches start at zero (beta, gamma), so the stack
    trains from the identity and stays stable without it (as in ReZero/SkipInit).
    """

    def __init__(self, channels: int, expand: int = 2):
        super().__init__()
        hidden = channels * expand
        self.spatial = nn.Sequential(
            conv1x1(channels, hidden),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            SimpleGate(),
        )
        self.channel_attention = conv1x1(hidden // 2, hidden // 2)
        self.project = conv1x1(hidden // 2, channels)
        self.ffn = nn.Sequential(conv1x1(channels, hidden), SimpleGate(),
                                 conv1x1(hidden // 2, channels))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.spatial(x)
        y = y * self.channel_attention(y.mean(dim=(2, 3), keepdim=True))
        x = x + self.project(y) * self.beta
        return x + self.ffn(x) * self.gamma
