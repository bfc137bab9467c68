"""Training losses of LDR (eq. 8-10): Charbonnier plus a Laplacian edge term, and optionally a
structural (1 - SSIM) term.

Charbonnier alone ranks a slightly soft image above a sharp one with a small shift, so a small
restorer learns to smooth; the SSIM term (Zhao et al.'s L1 + SSIM mix) pays for local contrast and
structure, which is what dehazing most needs to recover.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Mean of sqrt((pred - target)^2 + eps^2): L1-like, but smooth at zero (eq. 8)."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def marked_error(pred: torch.Tensor, target: torch.Tensor, marked: torch.Tensor,
                 eps: float = 1e-4) -> torch.Tensor:
    """Charbonnier over the `marked` pixels (B, 1, H, W mask) of the batch alone; 0 with none.
    Lane markings are under 1% of a road view's pixels and as thin and bright as rain streaks:
    in the mean loss a restorer that scrubs them off with the streaks pays almost nothing."""
    error = torch.sqrt((pred - target).pow(2) + eps * eps) * marked
    return error.sum() / (marked.sum() * pred.shape[1]).clamp(min=1.0)


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """Per-channel Laplacian; replicated borders, so a flat image has none."""
    c = image.shape[1]
    kernel = _LAPLACIAN.to(image).expand(c, 1, 3, 3)
    return F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def worse_than_input(pred: torch.Tensor, degraded: torch.Tensor, target: torch.Tensor,
                     eps: float = 1e-4) -> torch.Tensor:
    """Mean over the batch of how much further from the target each restored frame is than its
    input was: relu(log(Charbonnier(pred)) - log(Charbonnier(input))), a ratio, so a slight frame
    made 30% worse costs what a heavy one does. The do-no-harm term: a restorer must not return
    a frame worse than it came in, which the mean loss alone lets a few slight frames pay for
    the many heavy ones."""
    def per_frame(image: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((image - target).pow(2) + eps * eps).flatten(1).mean(1)

    return torch.relu(torch.log(per_frame(pred)) - torch.log(per_frame(degraded))).mean()


class RestorationLoss(nn.Module):
    """L_char + edge_weight * L_edge (eq. 10, eps = 1e-4, lambda = 0.05) + ssim_weight * (1 - SSIM).

    The SSIM term needs torchmetrics (the `train` extra); it is imported only when used.
    """

    def __init__(self, edge_weight: float = 0.05, ssim_weight: float = 0.0, eps: float = 1e-4):
        super().__init__()
        self.edge_weight = edge_weight
        self.ssim_weight = ssim_weight
        self.eps = eps
        self._ssim = None
        if ssim_weight:
            try:
                from torchmetrics.functional.image import structural_similarity_index_measure
            except ImportError as error:
                raise ImportError("ssim_weight > 0 needs torchmetrics: "
                                  "pip install 'allweather_ros[train]'") from error
            self._ssim = structural_similarity_index_measure

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        edge = charbonnier(laplacian(pred), laplacian(target), self.eps)
        loss = charbonnier(pred, target, self.eps) + self.edge_weight * edge
        if self._ssim is not None:
            loss = loss + self.ssim_weight * (1 - self._ssim(pred, target, data_range=1.0))
        return loss


def _log_mse(pred: torch.Tensor, target: torch.Tensor, mse_floor: float) -> torch.Tensor:
    """Each frame's log10(MSE + mse_floor): minus a tenth of its PSNR, capped."""
    return torch.log10((pred - target).pow(2).flatten(1).mean(1) + mse_floor)


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, mse_floor: float) -> torch.Tensor:
    """Mean over the batch of log10(MSE + mse_floor), i.e. minus a tenth of each frame's PSNR,
    capped at -10 log10(mse_floor) dB: every frame's decibels weigh alike, as the evaluation
    counts them, where a pixel loss lets the heavy frames' large errors outweigh the rest."""
    return _log_mse(pred, target, mse_floor).mean()


def harm_loss(pred: torch.Tensor, degraded: torch.Tensor, target: torch.Tensor,
              mse_floor: float) -> torch.Tensor:
    """Mean over the batch of how far each frame came out worse than it went in, in tenths of a
    decibel of the same capped PSNR as `psnr_loss`; frames restored better count zero. A
    restorer must never make a frame worse: this prices exactly that, which a mean gain hides."""
    worse = _log_mse(pred, target, mse_floor) - _log_mse(degraded, target, mse_floor)
    return worse.clamp(min=0).mean()
