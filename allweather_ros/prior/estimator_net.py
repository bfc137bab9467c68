"""The built-in estimator's network, in torch: trained by training/estimator.py, exported to
ONNX by runtime/export.py, and run for the provider by `TorchEstimatorNet` (the torch-free
pipeline runs its ONNX graph instead: runtime/onnx_prior.py).

The frame is shrunk to the network's input size before the convolutions (short side
`input_side`, aspect kept, long side capped): in `forward` by torch, for batches in training, and
for the provider in numpy (estimator_input.py, the same arithmetic), outside the graph.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.network_io import read_metadata
from allweather_ros.prior.estimator_input import input_size

_DETAIL_GAIN = 4.0  # brings the detail layer's few-hundredths to the frame's range


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DegradationEstimator(nn.Module):
    """(B, 3, H, W) frames in [0, 1] -> type logits (B, 4) and severity logits (B, 4, 3).

    One stage per entry of `widths`, a stride-2 conv and a conv, halves the resolution;
    `max_aspect` caps the long side at that many short sides so a panorama costs no more.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), input_side: int = 128,
                 max_aspect: float = 2.0, hidden: int = 64):
        super().__init__()
        self.config = {"widths": list(widths), "input_side": input_side,
                       "max_aspect": max_aspect, "hidden": hidden}
        self.input_side, self.max_aspect = input_side, max_aspect
        layers, cin = [], 6  # the frame and its detail layer
        for width in widths:
            layers += [_conv(cin, width, 2), _conv(width, width, 1)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * cin, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, len(TYPES) * (1 + len(SEVERITIES))))

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        return input_size(height, width, self.input_side, self.max_aspect)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.input_size(*frames.shape[-2:])
        if size != tuple(frames.shape[-2:]):
            # Area averaging when shrinking keeps thin streaks as faint lines instead of
            # dropping them between samples; bilinear for the rare frame smaller than the input.
            shrink = size[0] <= frames.shape[-2] and size[1] <= frames.shape[-1]
            frames = F.interpolate(frames, size=size, mode="area" if shrink else "bilinear",
                                   align_corners=None if shrink else False)
        return self.logits(frames)

    def logits(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """forward on frames already at their input size (the exported graph)."""
        detail = frames - F.avg_pool2d(frames, 5, stride=1, padding=2, count_include_pad=False)
        x = self.features(torch.cat([frames - 0.5, _DETAIL_GAIN * detail], dim=1))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        out = self.head(pooled)
        n = len(TYPES)
        return out[:, :n], out[:, n:].reshape(-1, n, len(SEVERITIES))


def _copies(old: int, new: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Which old unit each of `new` units copies (the old ones first, then random ones), and how
    many copies each old unit has."""
    if new < old:
        raise ValueError(f"a wider estimator cannot have fewer units ({new}) than the one it "
                         f"starts from ({old})")
    source = torch.cat([torch.arange(old), torch.randint(0, old, (new - old,), generator=g)])
    return source, torch.bincount(source, minlength=old).float()


@torch.no_grad()
def widened(model: DegradationEstimator, widths: tuple[int, ...], hidden: int,
            noise: float = 0.02, seed: int = 0) -> DegradationEstimator:
    """`model` in a wider network that computes the same logits (Net2WiderNet): each new unit
    copies a trained one and the layer after splits the copy's weight among them, so a wider
    estimator starts where the trained one is instead of from scratch. `noise` (a share of the
    weights' spread, on the copies' inputs) lets the copies drift apart in training."""
    if len(widths) != len(model.config["widths"]):
        raise ValueError(f"widening keeps the {len(model.config['widths'])} stages; got widths "
                         f"{tuple(widths)}")
    g = torch.Generator().manual_seed(seed)
    wide = DegradationEstimator(tuple(widths), model.input_side, model.max_aspect, hidden)

    def perturbed(weight: torch.Tensor, old: int) -> torch.Tensor:
        copies = weight[old:]
        copies += noise * copies.std() * torch.randn(copies.shape, generator=g)
        return weight

    source, count = torch.arange(6), torch.ones(6)  # the frame and its detail layer
    for narrow_block, wide_block in zip(model.features, wide.features, strict=True):
        (conv, norm), (wide_conv, wide_norm) = narrow_block[:2], wide_block[:2]
        inputs = source
        source, copies = _copies(conv.out_channels, wide_conv.out_channels, g)
        weight = conv.weight[source][:, inputs] / count[inputs][None, :, None, None]
        wide_conv.weight.copy_(perturbed(weight, conv.out_channels))
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(wide_norm, name).copy_(getattr(norm, name)[source])
        count = copies
    first, last = model.head[0], model.head[2]
    channels = model.features[-1][0].out_channels
    pooled = torch.cat([source, channels + source])  # mean-pooled, then max-pooled features
    units, unit_copies = _copies(first.out_features, hidden, g)
    weight = first.weight[units][:, pooled] / torch.cat([count[source]] * 2)[None]
    wide.head[0].weight.copy_(perturbed(weight, first.out_features))
    wide.head[0].bias.copy_(first.bias[units])
    wide.head[2].weight.copy_(last.weight[:, units] / unit_copies[units][None])
    wide.head[2].bias.copy_(last.bias)
    return wide


def load_estimator(path: str | Path, device: str | torch.device = "cpu") -> DegradationEstimator:
    """Rebuild the estimator a safetensors file describes and load it strictly, in eval mode.

    The file is written by `model.weights.save_weights`, which stores any module's `config`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"built-in estimator weights {path} do not exist; train them with "
            f"`python -m allweather_ros.training.estimator --out {path}`"
        )
    config = read_metadata(path).get("config")
    if config is None:
        raise ValueError(f"{path} has no estimator config in its metadata; save it with "
                         "allweather_ros.model.weights.save_weights")
    model = DegradationEstimator(**{**config, "widths": tuple(config["widths"])})
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.to(device).eval()


class TorchEstimatorNet:
    """The provider's view of the network run by torch: a frame at its input size, numpy
    (1, 3, h, w) -> type logits (T,) and severity logits (T, S), numpy."""

    def __init__(self, model: DegradationEstimator, device: str = "cpu"):
        self.model, self.device = model, device
        self.input_side, self.max_aspect = model.input_side, model.max_aspect

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TorchEstimatorNet:
        return cls(load_estimator(path, device), device)

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        types, severity = self.model.logits(torch.from_numpy(frame).to(self.device))
        return types[0].float().cpu().numpy(), severity[0].float().cpu().numpy()
