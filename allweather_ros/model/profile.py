"""Parameter and FLOP counts of a model, taken from the real graph.

FLOPs are torch's FlopCounterMode counts of convolutions and matrix products (2 x
multiply-adds); elementwise work is not counted. The graph runs on the meta device, so even
1080p profiles of the large variant take no time and no memory.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .network import LDRNet


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive, got {text!r}")
    return w, h


def profile(model: LDRNet, width: int, height: int, prior_tokens: int = 16) -> dict:
    """Parameters, GFLOP per frame and the Top-K experts' share of them at one frame size."""
    params = sum(p.numel() for p in model.parameters())
    with torch.device("meta"):
        meta = LDRNet(**model.config)
    prior_dim = model.config["prior_dim"]
    tokens = torch.zeros(1, prior_tokens, prior_dim, device="meta")
    mask = torch.ones(1, prior_tokens, dtype=torch.bool, device="meta")
    image = torch.zeros(1, 3, height, width, device="meta")
    with torch.no_grad():
        cache = meta.encode_prior(tokens, mask)
        counter = FlopCounterMode(display=False)
        with counter:
            meta(image, *cache)
    per_module = counter.get_flop_counts()
    experts = sum(sum(ops.values()) for name, ops in per_module.items()
                  if name.endswith(".experts") and name.count(".") == 3)
    total = counter.get_total_flops()
    return {
        "size": f"{width}x{height}",
        "params": params,
        "gflops": total / 1e9,
        "experts_gflops": experts / 1e9,
        "experts_share": experts / total,
    }
