"""Degradation map measurement (LDR eq. 3-4): pixel features cross-attend to the prior."""
from __future__ import annotations

import torch
from torch import nn

from .layers import LayerNorm2d, conv1x1

MASKED = -1.0e4  # additive attention bias of a padding token; finite so fp16 stays NaN-free


class DegradationMapMeasurement(nn.Module):
    """M = Softmax(Q K^T / sqrt(d)) V with Q from the pixel features X, K and V from P_emb.

    Keys and values depend only on the prior, so `prior_kv` computes them once per refresh and
    the per-frame `forward` takes them ready-made. Each pixel of M is a mixture of the prior's
    value vectors: a pixel-wise reading of the description.
    """

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = LayerNorm2d(channels)
        self.query = conv1x1(channels, channels)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.project = conv1x1(channels, channels)

    def prior_kv(self, prior_emb: torch.Tensor) -> torch.Tensor:
        """(B, L, C) P_emb -> (B, 2, L, C): the keys and values every frame reuses."""
        return torch.stack([self.key(prior_emb), self.value(prior_emb)], dim=1)

    def forward(self, x: torch.Tensor, kv: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), kv (B, 2, L, C), bias (B, L) additive -> M (B, C, H, W)."""
        b, c, h, w = x.shape
        d = c // self.heads
        q = self.query(self.norm(x)).flatten(2).unflatten(1, (self.heads, d))  # B, h, d, HW
        k = kv[:, 0].unflatten(2, (self.heads, d)).permute(0, 2, 1, 3)  # B, h, L, d
        v = kv[:, 1].unflatten(2, (self.heads, d)).permute(0, 2, 3, 1)  # B, h, d, L
        logits = torch.matmul(k, q) * d**-0.5 + bias[:, None, :, None]  # B, h, L, HW
        m = torch.matmul(v, torch.softmax(logits, dim=2))  # B, h, d, HW
        return self.project(m.flatten(1, 2).unflatten(2, (h, w)))
