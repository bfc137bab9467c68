"""ONNX export (with torch) of the restorer's per-frame graph and of the prior's networks (the
restorer's prior encoding, the built-in estimator, the text encoder), the torch modules being
the source of truth. The graphs' names in the cache folder and the torch-free side are in graphs.py.

Per-frame graph inputs: image (B, 3, H, W) in [0, 1], prior_kv (B, 2 * ldr_blocks, L, C),
prior_bias (B, L) and, where the network has a frame gate, prior_gate_opening (B,). Outputs:
restored, degradation_map, expert_weights, expert_indices (see LDROutput). H, W and L stay
dynamic.

Run as `python -m allweather_ros.runtime.export` it exports the graphs a torch-free pipeline
needs that its cache folder lacks: graphs.ensure_graphs starts it in a child process.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..model import LDRNet
from ..model.weights import load_weights
from ..network_io import INPUTS, OUTPUTS, PRIOR_INPUTS, graph_inputs
from ..prior.estimator_net import load_estimator
from ..prior.text_encoder import TextEncoder, text_encoder_files
from .graphs import MAX_PRIOR_TOKENS, MODULE, digest, expected, graph_path, int8_graph
from .quantize import cached_int8_onnx


def example_inputs(model: LDRNet, width: int = 320, height: int = 240, prior_tokens: int = 16):
    """A frame and a prior cache of the model's shapes (`graph_inputs`), for export and parity
    checks."""
    tokens = torch.randn(1, prior_tokens, model.config["prior_dim"])
    mask = torch.ones(1, prior_tokens, dtype=torch.bool)
    with torch.no_grad():
        cache = model.encode_prior(tokens, mask)
    opening = (torch.zeros(1),) if model.frame_gate is not None else ()
    return torch.rand(1, 3, height, width), cache.kv, cache.bias, *opening


class _Call(nn.Module):
    """A module whose forward is `call` on `owner` (a method other than forward, or a keyword
    call), so that torch.onnx.export sees owner's parameters."""

    def __init__(self, owner: nn.Module, call: Callable):
        super().__init__()
        self.owner, self.call = owner, call

    def forward(self, *inputs):
        return self.call(self.owner, *inputs)


def export_graph(module: nn.Module, inputs: tuple, path: str | Path, input_names: list[str],
                 output_names: list[str], dynamic_shapes: dict, opset: int = 18) -> Path:
    """Export `module` with torch's dynamo exporter (needs onnxscript) into one file, written
    under a temporary name and renamed into place (a reader never sees half a graph).
    `dynamic_shapes`: input name -> {axis: Dim}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    if isinstance(module, _Call):  # its forward takes *inputs: shapes go by position
        dynamic_shapes = {"inputs": tuple(dynamic_shapes.get(n) for n in input_names)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision-is-missing and opset-conversion notices
        torch.onnx.export(module.eval(), inputs, str(tmp), input_names=input_names,
                          output_names=output_names, opset_version=opset, dynamo=True,
                          verbose=False, external_data=False, dynamic_shapes=dynamic_shapes)
    tmp.replace(path)
    return path


def _length() -> torch.export.Dim:
    return torch.export.Dim("prior_length", min=1, max=MAX_PRIOR_TOKENS)


def export_onnx(model: LDRNet, path: str | Path, opset: int = 18) -> Path:
    """The per-frame graph: LDRNet.forward."""
    height = torch.export.Dim("height", min=8, max=8192)
    width = torch.export.Dim("width", min=8, max=8192)
    length = torch.export.Dim("prior_length", min=1, max=256)
    dynamic = {"image": {2: height, 3: width}, "prior_kv": {2: length}, "prior_bias": {1: length}}
    names = graph_inputs(model.config)
    return export_graph(model, example_inputs(model), path, list(names), list(OUTPUTS),
                        {name: dynamic.get(name) for name in names}, opset)


def export_prior_encoding(model: LDRNet, path: str | Path) -> Path:
    """LDRNet.encode_prior: tokens (1, L, C_txt) and mask (1, L) -> prior_kv, prior_bias."""
    tokens = torch.randn(1, 16, model.config["prior_dim"])
    mask = torch.ones(1, 16, dtype=torch.bool)
    length = _length()
    return export_graph(_Call(model, LDRNet.encode_prior), (tokens, mask), path,
                        list(PRIOR_INPUTS), list(INPUTS[1:]),
                        {"tokens": {1: length}, "mask": {1: length}})


def export_estimator(estimator: nn.Module, path: str | Path) -> Path:
    """DegradationEstimator.logits: a frame already at its input size (the resize runs in numpy,
    prior/builtin.py) -> type logits (1, T), severity logits (1, T, S)."""
    frame = torch.rand(1, 3, estimator.input_side, round(estimator.input_side * 4 / 3))
    height = torch.export.Dim("height", min=8, max=4096)
    width = torch.export.Dim("width", min=8, max=4096)
    return export_graph(_Call(estimator, type(estimator).logits), (frame,), path, ["frame"],
                        ["types", "severity"], {"frame": {2: height, 3: width}})


TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_text_encoder(transformer: nn.Module, path: str | Path) -> Path:
    """The sentence transformer's last hidden state (1, L, dim) of token ids (1, L)."""
    ids = torch.randint(1000, 2000, (1, 12))  # distinct tensors: the exporter merges aliases
    mask, types = torch.ones_like(ids), torch.zeros_like(ids)
    length = _length()

    def hidden(owner, input_ids, attention_mask, token_type_ids):
        return owner(input_ids=input_ids, attention_mask=attention_mask,
                     token_type_ids=token_type_ids).last_hidden_state

    return export_graph(_Call(transformer, hidden), (ids, mask, types), path,
                        list(TEXT_INPUTS), ["last_hidden_state"],
                        {name: {1: length} for name in TEXT_INPUTS})


def model_digest(model: nn.Module) -> str:
    """A short hash of the configuration and weights: names the ONNX files a model exports to
    (the same as graphs.weights_digest of the file it was loaded from)."""
    return digest(model.config, ((name, tensor.detach().cpu().contiguous().numpy())
                                 for name, tensor in sorted(model.state_dict().items())))


def cached_onnx(model: LDRNet, cache_dir: str | Path) -> Path:
    """The model's ONNX file in `cache_dir`, exported only when that model has none yet."""
    path = graph_path(cache_dir, "ldr", model_digest(model))
    if not path.is_file():
        export_onnx(model, path)
    return path


def export_missing(cache_dir: str | Path, restorer: str | Path | None = None, int8: bool = False,
                   estimator: str | Path | None = None,
                   text_encoder: tuple[Path, str] | None = None) -> list[Path]:
    """Export (with torch, here) each graph of these sources that is not in the cache yet."""
    paths = expected(cache_dir, restorer, estimator, text_encoder)
    written = []
    if restorer is not None:
        model = load_weights(restorer)
        for kind, export in (("ldr", export_onnx), ("ldr-prior", export_prior_encoding)):
            if not paths[kind].is_file():
                written.append(export(model, paths[kind]))
        if int8 and not int8_graph(paths["ldr"], cache_dir).is_file():
            written.append(cached_int8_onnx(model, paths["ldr"], cache_dir))
    if estimator is not None and not paths["estimator"].is_file():
        written.append(export_estimator(load_estimator(estimator), paths["estimator"]))
    if text_encoder is not None and not paths["text-encoder"].is_file():
        encoder = TextEncoder(*text_encoder, max_tokens=MAX_PRIOR_TOKENS)
        written.append(export_text_encoder(encoder.transformer, paths["text-encoder"]))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}", description="Export the ONNX graphs a torch-free pipeline "
        "(ONNX Runtime backend) runs, each only if the cache folder lacks it.")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--restorer", help="restorer weights: per-frame and prior graphs")
    parser.add_argument("--int8", action="store_true", help="also the int8 per-frame graph")
    parser.add_argument("--estimator", help="built-in estimator weights")
    parser.add_argument("--text-encoder", nargs="?", const="",
                        help="text encoder folder (no value: the bundled one)")
    parser.add_argument("--text-encoder-sha256", help="its weights' sha256 (with a folder)")
    args = parser.parse_args(argv)
    text_encoder = None
    if args.text_encoder is not None:
        text_encoder = text_encoder_files(args.text_encoder or None, args.text_encoder_sha256)
    for path in export_missing(args.cache_dir, args.restorer, args.int8, args.estimator,
                               text_encoder):
        print(f"exported {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
