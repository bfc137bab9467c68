"""Training losses of LDR (eq. 8-10): Charbonnier plus a Laplacian edge term."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): L1-like, but smooth at zero (eq. 8)."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """Per-channel Laplacian; replicated borders, so a flat image has none."""
    c = image.shape[1]
    kernel = _LAPLACIAN.to(image).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


class RestorationLoss(nn.Module):
    """L_total = L_char + lambda * L_edge (eq. 10), with eps = 1e-4 and lambda = 0.05."""

    def __init__(self, edge_weight: float = 0.05, eps: float = 1e-4):
        super().__init__()
        self.edge_weight = edge_weight
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        edge = charbonnier(laplacian(pred), laplacian(target), self.eps)
        return charbonnier(pred, target, self.eps) + self.edge_weight * edge
