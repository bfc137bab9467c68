"""What the restorer network takes and gives, and what a weights file says about itself, free of
torch: the torch model, its ONNX export and the torch-free ONNX Runtime path (a node that never
imports torch) all name them from here.

The containers hold torch tensors on the torch path and numpy arrays on the ONNX Runtime path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

PACKAGED = Path(__file__).resolve().parent / "weights"
"""The weights shipped in the package."""
INPUTS = ("image", "prior_kv", "prior_bias")
"""The per-frame graph's inputs: image (B, 3, H, W) in [0, 1], then a PriorCache's fields."""
OUTPUTS = ("restored", "degradation_map", "expert_weights", "expert_indices")
"""The per-frame graph's outputs: LDROutput's fields."""
PRIOR_INPUTS = ("tokens", "mask")
"""The prior-encoding graph's inputs: tokens (B, L, C_txt) and validity mask (B, L)."""


class PriorCache(NamedTuple):
    """What every frame reuses from one prior: keys/values per LDR block and the padding bias."""

    kv: Any  # (B, 2 * ldr_blocks, L, C)
    bias: Any  # (B, L), 0 for a token, MASKED for padding


class LDROutput(NamedTuple):
    restored: Any  # (B, 3, H, W), the clean frame estimate (not clamped)
    degradation_map: Any  # (B, 1, H, W) in [0, 1], per-pixel degradation strength
    expert_weights: Any  # (B, K, h, w) at the bottleneck resolution
    expert_indices: Any  # (B, K, h, w) int64


def read_metadata(path: str | Path) -> dict:
    """A safetensors file's metadata, each value JSON-decoded (read without torch)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def checked_frame(rgb: np.ndarray) -> np.ndarray:
    """`rgb` if it is a frame the restorer and the estimators take, float RGB (H, W, 3) in [0, 1];
    else a ValueError. Integer samples are refused rather than guessed at: read as floats they
    are hundreds of times too bright and the networks answer with garbage without a word."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got shape {rgb.shape}")
    if rgb.dtype.kind != "f":
        hint = (f": divide by {np.iinfo(rgb.dtype).max} first (media.read_rgb and the node "
                "do)" if rgb.dtype.kind in "ui" else "")
        raise ValueError(f"expected float RGB samples in [0, 1], got {rgb.dtype}{hint}")
    return rgb
