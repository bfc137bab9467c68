"""ONNX Runtime backend: the CPU provider everywhere, CUDA and TensorRT providers when present."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..model import LDROutput, PriorCache
from .backend import Backend, BackendUnavailable
from .export import INPUTS

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeBackend(Backend):
    """Runs an exported per-frame graph with ONNX Runtime.

    `providers` is tried in order; asking for a GPU provider that this onnxruntime build lacks
    raises BackendUnavailable instead of silently running on the CPU.
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 threads: int | None = None, precision: str = "fp32"):
        import onnxruntime as ort

        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendUnavailable(f"onnxruntime here lacks {missing}; it has {available}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=list(providers))
        self.providers = self.session.get_providers()
        self.precision = precision
        self._prior: dict[str, np.ndarray] | None = None

    def set_prior(self, cache: PriorCache) -> None:
        self._prior = {INPUTS[1]: cache.kv.detach().float().numpy(),
                       INPUTS[2]: cache.bias.detach().float().numpy()}

    def infer(self, image: torch.Tensor) -> LDROutput:
        if self._prior is None:
            raise RuntimeError("set_prior must be called before infer")
        feed = {INPUTS[0]: image.detach().float().contiguous().numpy(), **self._prior}
        return LDROutput(*(torch.from_numpy(a) for a in self.session.run(None, feed)))

    def describe(self) -> dict:
        on_gpu = any(p in GPU_PROVIDERS for p in self.providers)
        return {"backend": self.name, "device": "cuda" if on_gpu else "cpu",
                "providers": self.providers, "precision": self.precision}
