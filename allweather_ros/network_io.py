"""What the restorer network takes and gives, and what a weights file says about itself, free of
torch: the torch model, its ONNX export and the torch-free ONNX Runtime path (a node that never
imports torch) all name them from here.

The containers hold torch tensors on the torch path and numpy arrays on the ONNX Runtime path.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

PACKAGED = Path(__file__).resolve().parent / "weights"
"""The weights shipped in the package."""
INPUTS = ("image", "prior_kv", "prior_bias")
"""The per-frame graph's inputs: image (B, 3, H, W) in [0, 1], then a PriorCache's fields."""
GATE_OPENING = "prior_gate_opening"
"""The per-frame graph's input of PriorCache.gate_opening, only where the network has a frame
gate (`graph_inputs`)."""
OUTPUTS = ("restored", "degradation_map", "expert_weights", "expert_indices")
"""The per-frame graph's outputs: LDROutput's fields."""
PRIOR_INPUTS = ("tokens", "mask")
"""The prior-encoding graph's inputs: tokens (B, L, C_txt) and validity mask (B, L)."""


class PriorCache(NamedTuple):
    """What every frame reuses from one prior: keys/values per LDR block and the padding bias."""

    kv: Any  # (B, 2 * ldr_blocks, L, C)
    bias: Any  # (B, L), 0 for a token, MASKED for padding
    gate_opening: Any = None  # (B,) in [0, 1]: the frame gate held that far open; None: 0


def graph_inputs(config: dict) -> tuple[str, ...]:
    """The per-frame graph's inputs for a network of `config`: GATE_OPENING too where it has a
    frame gate."""
    return (*INPUTS, GATE_OPENING) if config.get("frame_gate") else INPUTS


def gate_opening_feed(cache: PriorCache) -> np.ndarray:
    """The cache's gate opening as the graph takes it: (B,) float32, zeros where it has none."""
    if cache.gate_opening is None:
        return np.zeros(cache.bias.shape[0], np.float32)
    return np.asarray(cache.gate_opening, np.float32).reshape(-1)


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


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes (how the model card names the shipped weights, and the
    text encoder's files are checked), hashed again only when the file's size or modification
    time changes: diagnostics ask on every report."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # 1 MiB at a time
            digest.update(chunk)
    return digest.hexdigest()


def without_frame_gate(path: str | Path, folder: str | Path) -> Path:
    """The weights at `path` without their frame gate (`model.network.FrameGate`), for whoever
    would rather take more real rain out than leave light frames alone (model card): the
    network's whole correction past its restoration gate. Written once into `folder`, named by
    the source file's sha256, so that graphs and engines exported from the two never mix;
    `path` itself where there is no frame gate. Read and written without torch."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = Path(path)
    config = read_metadata(path).get("config")
    if config is None:
        raise ValueError(f"{path} has no model config in its metadata")
    if not config.get("frame_gate"):
        return path
    source = file_sha256(path)
    out = Path(folder).expanduser() / f"{path.stem}-no-frame-gate-{source[:16]}.safetensors"
    if out.is_file():
        return out
    with safe_open(str(path), framework="np") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("frame_gate.")}
    metadata.pop("frame_gate", None)  # the gate's fit, no longer in the file
    metadata["config"] = json.dumps({**config, "frame_gate": 0})
    metadata["without_frame_gate"] = json.dumps({"from": str(path), "sha256": source})
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".tmp", dir=out.parent)
    os.close(handle)
    save_file(tensors, tmp, metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)  # whole or absent, whoever else writes it at the same time
    return out


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
