"""Weights in safetensors, with the model configuration in the file's metadata.

safetensors holds tensors only, so loading a file can never run code (unlike unpickling a
.pt/.pth), and the configuration stored beside the tensors rebuilds the right network.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..network_io import PACKAGED, read_metadata  # noqa: F401  PACKAGED is imported from here
from .network import LDRNet


def save_weights(model: LDRNet, path: str | Path, extra: dict | None = None) -> Path:
    """Write the model's tensors and its constructor arguments (plus `extra` metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(model.config)}
    metadata.update({k: json.dumps(v) for k, v in (extra or {}).items()})
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.chmod(0o644)  # shipped in the package: readable by every user of an install
    tmp.replace(path)
    return path


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> LDRNet:
    """Rebuild the network a safetensors file describes and load its weights, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        meta = read_metadata(path)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    if "config" not in meta:
        raise ValueError(f"{path} has no model config in its metadata; save it with save_weights")
    config = meta["config"]
    for key in ("enc_blocks", "dec_blocks"):
        config[key] = tuple(config[key])
    model = LDRNet(**config)
    try:
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    except RuntimeError as exc:  # tensor shapes that differ from what the config builds
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)[:300]
        raise ValueError(f"{path} does not match its config: {first}") from None
    if missing or unexpected:
        raise ValueError(f"{path} does not match its config: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return model.to(device).eval()
