"""ONNX export of the per-frame graph, with dynamic frame size and prior length.

Inputs: image (B, 3, H, W) in [0, 1], prior_kv (B, 2 * ldr_blocks, L, C), prior_bias (B, L).
Outputs: restored, degradation_map, expert_weights, expert_indices (see LDROutput).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from ..model import LDRNet

INPUTS = ("image", "prior_kv", "prior_bias")
OUTPUTS = ("restored", "degradation_map", "expert_weights", "expert_indices")


def example_inputs(model: LDRNet, width: int = 320, height: int = 240, prior_tokens: int = 16):
    """A frame and a prior cache of the model's shapes, for export and parity checks."""
    tokens = torch.randn(1, prior_tokens, model.config["prior_dim"])
    mask = torch.ones(1, prior_tokens, dtype=torch.bool)
    with torch.no_grad():
        cache = model.encode_prior(tokens, mask)
    return torch.rand(1, 3, height, width), cache.kv, cache.bias


def export_onnx(model: LDRNet, path: str | Path, opset: int = 18) -> Path:
    """Export with torch's dynamo exporter (needs onnxscript); H, W and L stay dynamic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    height = torch.export.Dim("height", min=8, max=8192)
    width = torch.export.Dim("width", min=8, max=8192)
    length = torch.export.Dim("prior_length", min=1, max=256)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision-is-missing and opset-conversion notices
        torch.onnx.export(
            model, example_inputs(model), str(path), input_names=list(INPUTS),
            output_names=list(OUTPUTS), opset_version=opset, dynamo=True, verbose=False,
            external_data=False,
            dynamic_shapes={"image": {2: height, 3: width}, "prior_kv": {2: length},
                            "prior_bias": {1: length}})
    return path


def model_digest(model: LDRNet) -> str:
    """A short hash of the configuration and weights: names the ONNX file a model exports to."""
    h = hashlib.sha256(json.dumps(model.config, sort_keys=True, default=list).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_onnx(model: LDRNet, cache_dir: str | Path) -> Path:
    """The model's ONNX file in `cache_dir`, exported only when that model has none yet."""
    path = Path(cache_dir) / f"ldr-{model_digest(model)}.onnx"
    if not path.is_file():
        tmp = export_onnx(model, path.with_suffix(".tmp.onnx"))
        tmp.replace(path)
    return path
