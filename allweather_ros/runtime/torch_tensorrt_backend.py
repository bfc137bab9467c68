"""Torch-TensorRT backend: the model compiled by torch_tensorrt's dynamo frontend, no ONNX.

An alternative to the ONNX -> TensorRT path for machines where torch_tensorrt matches the
installed torch and TensorRT (backend torch_tensorrt[:fp16]). It compiles at every start
(nothing is cached), so a robot is better served by the cached tensorrt engine. Everything else
is the torch backend's.
"""
from __future__ import annotations

import torch

from ..model import LDRNet
from ..network_io import GATE_OPENING, graph_inputs
from .backend import BackendUnavailable
from .engine_cache import ShapeProfile
from .export import example_inputs
from .tensorrt_backend import cuda_device, engine_profile, profile_shapes
from .torch_backend import TorchBackend


class TorchTensorRTBackend(TorchBackend):
    name = "torch_tensorrt"

    def __init__(self, model: LDRNet, precision: str = "fp16",
                 profile: ShapeProfile | None = None, device: int = 0):
        try:
            import torch_tensorrt
        except ImportError as exc:
            raise BackendUnavailable(f"torch_tensorrt is not importable ({exc}); it must be "
                                     "the build matching this torch and TensorRT") from exc
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
        cuda = cuda_device(device)
        _, kv, bias, *_ = example_inputs(model)  # before the model moves to the GPU
        super().__init__(model, str(cuda), "fp32")  # fp32 in and out; TensorRT picks kernels
        self.precision = precision
        self.profile = profile or engine_profile(0)
        dims = {"image": (1, 3, -1, -1), "prior_kv": (*kv.shape[:2], -1, kv.shape[3]),
                "prior_bias": (bias.shape[0], -1), GATE_OPENING: (1,)}
        shapes = profile_shapes(self.profile, dims)
        inputs = [torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi,
                                       dtype=torch.float32)
                  for lo, opt, hi in (shapes[name] for name in graph_inputs(model.config))]
        precisions = {torch.float32, torch.float16} if precision == "fp16" else {torch.float32}
        self.forward = torch_tensorrt.compile(self.model, ir="dynamo", inputs=inputs,
                                              enabled_precisions=precisions)

    def describe(self) -> dict:
        return {**super().describe(), "profile": self.profile.slug()}
