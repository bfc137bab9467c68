"""Named model variants and YAML model configurations.

A configuration is exactly the keyword arguments of `LDRNet`; a YAML file may start from a
named variant (`variant: rt`) and override any of them.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from .network import LDRNet

VARIANTS: dict[str, dict] = {
    # Real time on a CPU or a Jetson: at most 5 GFLOP per 640x480 frame.
    "rt": dict(width=16, enc_blocks=(1, 2), middle_blocks=2, dec_blocks=(1, 1),
               ldr_blocks=1, prior_dim=384, heads=4, num_experts=8, top_k=2,
               expert_expand=2, smooth_kernel=3, block_expand=2, ffn_expand=2),
    # Desktop GPUs: wider, deeper, more experts and two LDR blocks.
    "base": dict(width=32, enc_blocks=(2, 2, 4), middle_blocks=4, dec_blocks=(1, 1, 1),
                 ldr_blocks=2, prior_dim=384, heads=8, num_experts=16, top_k=3,
                 expert_expand=2, smooth_kernel=3, block_expand=2, ffn_expand=2),
}

_ARGS = set(inspect.signature(LDRNet.__init__).parameters) - {"self"}


def load_config(name_or_path: str | Path) -> dict:
    """A variant name or a YAML file -> LDRNet keyword arguments, validated."""
    if str(name_or_path) in VARIANTS:
        return dict(VARIANTS[str(name_or_path)])
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"model config {str(name_or_path)!r} is neither a variant "
                                f"{sorted(VARIANTS)} nor a file")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a model config must be a mapping of LDRNet arguments")
    raw = raw.get("model", raw)
    config = dict(VARIANTS[raw.pop("variant", "rt")])
    unknown = set(raw) - _ARGS
    if unknown:
        raise ValueError(f"{path}: unknown model arguments {sorted(unknown)}; "
                         f"known: {sorted(_ARGS)}")
    config.update(raw)
    for key in ("enc_blocks", "dec_blocks"):
        config[key] = tuple(config[key])
    return config


def build_model(name_or_path: str | Path = "rt") -> LDRNet:
    return LDRNet(**load_config(name_or_path))
