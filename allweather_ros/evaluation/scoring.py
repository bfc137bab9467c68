"""What every synthetic evaluation shares: a dataset item's truth, PSNR/SSIM (scikit-image, RGB
in [0, 1]), and a restorer that reads one frame under one description."""
from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..description import LOCATIONS, SEVERITIES, TYPES, Degradation
from ..model import LDRNet
from ..prior.frame_gate_opening import frame_gate_opening
from ..prior.prior import Prior


def degradations_of(item: dict) -> list[Degradation]:
    """The true degradations of a dataset item, from its labels, placed where the item says
    ("moderate" where a paired dataset gives no severity: only the classical baseline reads
    it, and it ignores it). Placed, so that `describe` of them is the item's true text: the
    restorer reads an unplaced description as a hedge and restores less."""
    severity, location = item.get("severity"), item.get("location")
    return [Degradation(t, "moderate" if severity is None else SEVERITIES[int(severity[i])],
                        None if location is None or location[i] < 0
                        else LOCATIONS[int(location[i])])
            for i, t in enumerate(TYPES) if item["types"][i] > 0]


def group_of(degradations: list[Degradation]) -> str:
    if not degradations:
        return "clean"
    return degradations[0].type if len(degradations) == 1 else "mixture"


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy().astype(np.float32)


WORSE_DB = 0.1  # a restored frame this far below its input's PSNR was made worse


def made_worse(restored_psnr: float, input_psnr: float) -> bool:
    """Whether restoring cost more than WORSE_DB; a clean input (PSNR_CAP) counts as made
    worse when it was changed by more than a float's rounding (PSNR below PSNR_CAP - WORSE_DB
    dB)."""
    return restored_psnr < input_psnr - WORSE_DB


def standard_error(values) -> float:
    """The standard error of the mean of `values` (0 for fewer than two): how far a mean over
    a split's hundred-odd frames may move on a fresh draw of its weather. Validation draws of
    the same scenes gave the cost of "heavy" on slight frames 0.8 and 2.5 dB, so a difference
    is read against this, not against a fixed margin."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


PSNR_CAP = 100.0  # an untouched frame's PSNR instead of infinity


def psnr(out: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB of `out` (clipped to [0, 1]) against `clean`, at most PSNR_CAP: an untouched
    frame's PSNR is infinite, which hides every other frame in a mean or a cost, and is not
    JSON."""
    out = out.clip(0.0, 1.0)
    if np.array_equal(out, clean):
        return PSNR_CAP
    return min(float(peak_signal_noise_ratio(clean, out, data_range=1.0)), PSNR_CAP)


def psnr_ssim(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    out = out.clip(0.0, 1.0)
    return (psnr(out, clean),
            float(structural_similarity(clean, out, channel_axis=2, data_range=1.0)))


class Restorer:
    """A model plus its text encoder, restoring one frame under one description."""

    def __init__(self, model: LDRNet, encoder):
        self.model, self.encoder = model.eval(), encoder

    @torch.no_grad()
    def __call__(self, degraded: torch.Tensor, said: str | Prior):
        """`said`: words, or a provider's prior (its text, and the frame gate held as far open
        as the pipeline holds it for that prior: prior/frame_gate_opening.py)."""
        tokens = self.encoder.encode(said if isinstance(said, str) else said.text)[None]
        cache = self.model.encode_prior(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool))
        if isinstance(said, Prior):
            cache = cache._replace(gate_opening=torch.tensor([frame_gate_opening(said)]))
        out = self.model(degraded[None], *cache)
        return hwc(out.restored[0].clamp(0, 1)), out.expert_indices[0, 0].flatten()
