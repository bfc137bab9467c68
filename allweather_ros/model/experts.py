"""Top-K expert restoration (LDR eq. 5), with experts cheap enough to evaluate densely.

Each expert F_n is a C -> C 3x3 convolution, factored as F_n = W_out diag(k_n) W_in: a shared
pointwise projection in, a per-expert depthwise 3x3 kernel k_n, a shared pointwise projection
out. W_in and W_out are linear and the same for all experts, so they commute with the per-pixel
weighted sum of eq. 5:

    sum_k S(p, rho_k) (F_{rho_k} * X)(p) = W_out sum_k S(p, rho_k) (k_{rho_k} * W_in X)(p)

which is eq. 5 exactly, while the per-expert work shrinks from 9 C^2 to 9 E multiply-adds per
pixel (E = expanded width). All N depthwise responses cost less than one dense expert, so the
graph stays static (no data-dependent shapes) for ONNX, TensorRT and torch.compile.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv1x1


class TopKExperts(nn.Module):
    """Scores N convolution experts per pixel from the degradation map M and sums the best K.

    S = Softmax(FFN^m(M)) over experts, smoothed over a region (neighbouring pixels usually
    share a degradation), then per pixel the K highest scores weight their experts' outputs.
    The weights are the smoothed scores themselves, as in eq. 5, so the router gets gradients.
    """

    def __init__(self, channels: int, num_experts: int, top_k: int, expand: int = 2,
                 smooth_kernel: int = 3):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")
        if smooth_kernel < 1 or smooth_kernel % 2 == 0:
            raise ValueError(f"smooth_kernel must be a positive odd number, got {smooth_kernel}")
        self.num_experts = num_experts
        self.top_k = top_k
        self.smooth_kernel = smooth_kernel
        hidden = channels * expand
        self.score = nn.Sequential(conv1x1(channels, channels), nn.GELU(),
                                   conv1x1(channels, num_experts))
        self.shared_in = conv1x1(channels, hidden, bias=False)
        self.expert_kernels = nn.Conv2d(hidden, hidden * num_experts, 3, padding=1,
                                        groups=hidden, bias=False)
        self.shared_out = conv1x1(hidden, channels, bias=False)

    def selection(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Degradation map (B, C, H, W) -> top-K weights and expert indices, each (B, K, H, W)."""
        scores = torch.softmax(self.score(m), dim=1)
        if self.smooth_kernel > 1:
            scores = F.avg_pool2d(scores, self.smooth_kernel, stride=1,
                                  padding=self.smooth_kernel // 2, count_include_pad=False)
        return torch.topk(scores, self.top_k, dim=1)

    def expert_filters(self) -> torch.Tensor:
        """The experts as plain convolution filters F_n, (N, C, C, 3, 3): for analysis and tests."""
        hidden = self.shared_in.out_channels
        k = self.expert_kernels.weight.view(hidden, self.num_experts, 3, 3)
        w_in = self.shared_in.weight[:, :, 0, 0]  # E, C
        w_out = self.shared_out.weight[:, :, 0, 0]  # C, E
        return torch.einsum("oe,enyx,ei->noiyx", w_out, k, w_in)

    def forward(self, x: torch.Tensor, m: torch.Tensor):
        """x, m (B, C, H, W) -> (X_int (B, C, H, W), weights (B, K, H, W), indices (B, K, H, W))."""
        weights, indices = self.selection(m)
        responses = self.expert_kernels(self.shared_in(x))  # B, E*N, H, W, ordered (E, N)
        responses = responses.unflatten(1, (-1, self.num_experts))  # B, E, N, H, W
        b, e = responses.shape[:2]
        chosen = torch.gather(responses, 2, indices.unsqueeze(1).expand(b, e, -1, -1, -1))
        mixed = (chosen * weights.unsqueeze(1)).sum(dim=2)
        return self.shared_out(mixed), weights, indices
