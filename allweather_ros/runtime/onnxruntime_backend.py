"""ONNX Runtime backend: the CPU provider everywhere, CUDA and TensorRT providers when present.

Torch-free: frames, priors and outputs are numpy arrays (a CPU torch tensor is read as one), so
a node with this backend need not load torch (see runtime/graphs.py for the prior's graphs).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..network_io import GATE_OPENING, INPUTS, LDROutput, PriorCache, gate_opening_feed
from .backend import Backend, BackendUnavailable

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def create_session(onnx_path: str | Path, providers: tuple[str, ...] = ("CPUExecutionProvider",),
                   threads: int | None = None, rarely_run: bool = False):
    """An InferenceSession of `onnx_path` on `providers` (all of which must exist here), with
    `threads` intra-op threads (None: up to 8).

    On the CPU no memory pattern is planned: its one block for every intermediate tensor of a
    640x480 frame held 70 MB more for no measured speed (docs/benchmarks.md, "Memory").
    `rarely_run` graphs (the prior's) also keep no arena and no prepacked copy of their weights:
    the text encoder's 30 MB copy made it 3 ms faster per new description, seconds apart.
    Idle intra-op threads sleep instead of spinning: beside a node's DDS, conversion and prior
    threads on a few cores, spinning workers took the CPU those need (on 2 cores the node's
    overhead outside inference p99 fell from 9.9 to 4.0 ms and its FPS rose, docs/benchmarks.md)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendUnavailable(f"onnxruntime here lacks {missing}; it has {available}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if all(p == "CPUExecutionProvider" for p in providers):
        options.enable_mem_pattern = False
    if rarely_run:
        options.enable_cpu_mem_arena = False
        options.add_session_config_entry("session.disable_prepacking", "1")
    return ort.InferenceSession(str(onnx_path), options, providers=list(providers))


def as_numpy(array, dtype=np.float32) -> np.ndarray:
    """A numpy view (or copy) of a numpy array or CPU torch tensor, without importing torch."""
    if hasattr(array, "detach"):  # a torch tensor, perhaps one that requires grad
        array = array.detach()
    return np.ascontiguousarray(array, dtype=dtype)


class OnnxRuntimeBackend(Backend):
    """Runs an exported per-frame graph with ONNX Runtime.

    `providers` is tried in order; asking for a GPU provider that this onnxruntime build lacks
    raises BackendUnavailable instead of silently running on the CPU.
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",),
                 threads: int | None = None, precision: str = "fp32"):
        self.session = create_session(onnx_path, providers, threads)
        self.providers = self.session.get_providers()
        self._input_names = {i.name for i in self.session.get_inputs()}
        self.precision = precision
        self._prior: dict[str, np.ndarray] | None = None

    def set_prior(self, cache: PriorCache) -> None:
        self._prior = {INPUTS[1]: as_numpy(cache.kv), INPUTS[2]: as_numpy(cache.bias)}
        if GATE_OPENING in self._input_names:  # a graph of a network with a frame gate
            self._prior[GATE_OPENING] = gate_opening_feed(cache)

    def infer(self, image) -> LDROutput:
        if self._prior is None:
            raise RuntimeError("set_prior must be called before infer")
        feed = {INPUTS[0]: as_numpy(image), **self._prior}
        return LDROutput(*self.session.run(None, feed))

    def describe(self) -> dict:
        on_gpu = any(p in GPU_PROVIDERS for p in self.providers)
        return {"backend": self.name, "device": "cuda" if on_gpu else "cpu",
                "providers": self.providers, "precision": self.precision}
