"""Restoration feature aggregation (LDR eq. 6-7), linear in the pixel count."""
from __future__ import annotations

import torch
from torch import nn

from .layers import ConvFFN, LayerNorm2d, conv1x1


def _unit_rows(t: torch.Tensor) -> torch.Tensor:
    """L2-normalise the last axis without forming a sum of squares that overflows fp16."""
    rms = torch.rsqrt(t.pow(2).mean(dim=-1, keepdim=True) + 1e-6)
    return t * rms * t.shape[-1] ** -0.5


class RestorationFeatureAggregation(nn.Module):
    """Queries from the degradation map M, keys and values from the expert features X_int.

    The attention is transposed (channel-to-channel, as in Restormer's MDTA): its map is
    (C/h x C/h) per head, computed over all pixels at once, so the cost grows linearly with the
    pixel count, every pixel sees the whole frame, and no window or input size is baked in
    (the authors' code hard-codes sizes for 512/256/128-pixel inputs). A convolutional FFN
    then restores locality (FFN^int).
    """

    def __init__(self, channels: int, heads: int, ffn_expand: int = 2):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm_m = LayerNorm2d(channels)
        self.norm_x = LayerNorm2d(channels)
        self.query = conv1x1(channels, channels)
        self.key_value = conv1x1(channels, 2 * channels)
        self.temperature = nn.Parameter(torch.ones(1, heads, 1, 1))
        self.project = conv1x1(channels, channels)
        self.norm_ffn = LayerNorm2d(channels)
        self.ffn = ConvFFN(channels, ffn_expand)

    def forward(self, m: torch.Tensor, x_int: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x_int.shape
        q = self.query(self.norm_m(m)).flatten(2).unflatten(1, (self.heads, -1))  # B, h, d, HW
        k, v = self.key_value(self.norm_x(x_int)).flatten(2).chunk(2, dim=1)
        k = k.unflatten(1, (self.heads, -1))
        v = v.unflatten(1, (self.heads, -1))
        attn = torch.softmax(
            torch.matmul(_unit_rows(q), _unit_rows(k).transpose(-1, -2)) * self.temperature, dim=-1
        )  # B, h, d, d
        out = torch.matmul(attn, v).flatten(1, 2).view(b, c, h, w)
        x = x_int + self.project(out)
        return x + self.ffn(self.norm_ffn(x))
