"""Static int8 quantization (QDQ, per-channel weights) of the exported per-frame graph.

On the CPU, ONNX Runtime runs the int8 graph faster than the fp32 one, except its depthwise
convolutions, which are kept in fp32 (see docs/benchmarks.md, issue 20). The activation ranges
are calibrated on frames of the training synthesis (never the test split) under their true
descriptions' prior keys/values, so the ranges are those the camera's frames will see. The
int8 file is cached beside the fp32 one under a name made of the fp32 file's hash and the
calibration recipe, so a new model or a new recipe quantizes again and nothing else does.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..network_io import GATE_OPENING, INPUTS, file_sha256, gate_opening_feed
from ..prior.text_encoder import TextEncoder

if TYPE_CHECKING:  # imported where used: the int8 graph's name is found without them
    import onnx

    from ..model import LDRNet


@dataclass(frozen=True)
class Calibration:
    """How the int8 graph is made; every field is part of its cache key."""

    frames: int = 24  # training-synthesis frames whose activations set the ranges
    crop: int = 192  # their side in pixels
    seed: int = 20
    method: str = "MinMax"  # onnxruntime.quantization.CalibrationMethod name
    op_types: tuple[str, ...] = ()  # what runs in int8; empty: every type ORT can quantize
    # ORT's int8 depthwise convolutions are slower than its fp32 (NCHWc) ones: keep them fp32
    fp32_depthwise: bool = True
    # the gain and residual head writes the restored frame: 8 bits there cost half the loss
    fp32_head: bool = True
    exclude: tuple[str, ...] = ()  # further node names kept in fp32

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


DEFAULT_CALIBRATION = Calibration()


def training_feeds(model: LDRNet, calibration: Calibration) -> list[dict[str, np.ndarray]]:
    """Graph inputs for calibration: train-split synthetic frames, each with the prior
    keys/values of its own true description through the shipped text encoder."""
    import torch

    from ..data.datasets import SyntheticWeatherDataset
    from ..data.sources import default_scenes

    encoder = TextEncoder()
    frames = SyntheticWeatherDataset(default_scenes(), "train", crop=calibration.crop,
                                     seed=calibration.seed, length=calibration.frames,
                                     wrong_description_p=0.0)
    feeds = []
    with torch.no_grad():
        for item in frames:
            tokens = encoder.encode(item["true_text"])[None].float()
            cache = model.encode_prior(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool))
            feed = {INPUTS[0]: item["degraded"][None].numpy(),
                    INPUTS[1]: cache.kv.numpy(), INPUTS[2]: cache.bias.numpy()}
            if model.frame_gate is not None:  # left to the frame, as a word alone leaves it
                feed[GATE_OPENING] = gate_opening_feed(cache)
            feeds.append(feed)
    return feeds


HEAD_WEIGHTS = ("gain.", "ending.")  # LDRNet's output convolutions: frame * (1 + gain) + ending


def depthwise_convolutions(graph: onnx.ModelProto) -> list[str]:
    """Names of the grouped convolutions (the blocks' 3x3 depthwise ones)."""
    return [node.name for node in graph.graph.node if node.op_type == "Conv"
            and any(a.name == "group" and a.i > 1 for a in node.attribute)]


def head_nodes(graph: onnx.ModelProto) -> list[str]:
    """Names of the head's convolutions and of every node after them (up to `restored`)."""
    head, tainted = [], set()
    for node in graph.graph.node:  # ONNX nodes are in topological order
        if any(i.startswith(HEAD_WEIGHTS) or i in tainted for i in node.input):
            head.append(node.name)
            tainted.update(node.output)
    return head


def kept_in_fp32(graph: onnx.ModelProto, calibration: Calibration) -> list[str]:
    return (list(calibration.exclude)
            + (depthwise_convolutions(graph) if calibration.fp32_depthwise else [])
            + (head_nodes(graph) if calibration.fp32_head else []))


def quantize(fp32_path: Path, int8_path: Path, feeds: list[dict[str, np.ndarray]],
             calibration: Calibration) -> Path:
    """Write the QDQ int8 version of `fp32_path`, its activation ranges taken from `feeds`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        """Hands over the frames in the ranges ORT asks for (see CalibStridedMinMax)."""

        def __init__(self):
            self.remaining = iter(feeds)

        def __len__(self):
            return len(feeds)

        def set_range(self, start_index: int, end_index: int):
            self.remaining = iter(feeds[start_index:end_index])

        def get_next(self):
            return next(self.remaining, None)

    exclude = kept_in_fp32(onnx.load(str(fp32_path)), calibration)
    tmp = int8_path.with_suffix(".tmp.onnx")
    quantize_static(
        str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=list(calibration.op_types) or None, nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod[calibration.method],
        # one frame's activations at a time: the histogram methods would keep them all
        extra_options={"CalibStridedMinMax": 1})
    tmp.replace(int8_path)
    return int8_path


def file_digest(path: Path) -> str:
    return file_sha256(path)[:16]


def int8_path(fp32_path: str | Path, cache_dir: str | Path, calibration: Calibration) -> Path:
    """Where the int8 graph of `fp32_path` made by `calibration` lies in `cache_dir`."""
    return Path(cache_dir) / f"ldr-int8-{file_digest(Path(fp32_path))}-{calibration.key()}.onnx"


def cached_int8_onnx(model: LDRNet, fp32_path: str | Path, cache_dir: str | Path,
                     calibration: Calibration | None = None) -> Path:
    """The int8 graph of `fp32_path` in `cache_dir`, quantized only when none exists for this
    fp32 file and recipe (default: DEFAULT_CALIBRATION)."""
    calibration = calibration or DEFAULT_CALIBRATION
    fp32_path = Path(fp32_path)
    path = int8_path(fp32_path, cache_dir, calibration)
    if not path.is_file():
        quantize(fp32_path, path, training_feeds(model, calibration), calibration)
    return path
