"""Backend choice by name, and `auto`: the fastest backend this machine can run.

The names and the precisions each accepts are in registry.py; this module builds them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..model import LDRNet
from .backend import Backend, BackendUnavailable
from .export import cached_onnx
from .onnxruntime_backend import GPU_PROVIDERS, OnnxRuntimeBackend
from .quantize import cached_int8_onnx
from .registry import AUTO_ORDER, BACKENDS, CUDA_ONLY, parse_backend
from .torch_backend import TorchBackend

log = logging.getLogger(__name__)


def create_backend(spec: str, model: LDRNet, cache_dir: str | Path,
                   threads: int | None = None, max_side: int = 0) -> Backend:
    """Build a backend from `NAME[:PRECISION]` (e.g. `torch-cuda:fp16`, `tensorrt:fp16`).
    `max_side` is the pipeline's working resolution (processing_max_side): a TensorRT engine
    is built for the frames it gives (tensorrt_backend.engine_profile).

    ValueError names what is allowed; BackendUnavailable says why a backend cannot run here.
    """
    name, precision = parse_backend(spec)
    if name == "auto":
        return _auto(model, cache_dir, precision, threads, max_side)
    if name == "torch":
        return TorchBackend(model, "cpu", precision)
    if name == "torch-cuda":
        return TorchBackend(model, "cuda", precision, channels_last=True)
    if name == "onnxruntime":
        onnx_path = cached_onnx(model, cache_dir)
        if precision == "int8":  # static QDQ int8, calibrated on training frames (quantize.py)
            return OnnxRuntimeBackend(cached_int8_onnx(model, onnx_path, cache_dir),
                                      threads=threads, precision="int8")
        return OnnxRuntimeBackend(onnx_path, threads=threads)
    if name == "onnxruntime-gpu":
        import onnxruntime as ort

        usable = tuple(p for p in GPU_PROVIDERS if p in ort.get_available_providers())
        if not usable:
            raise BackendUnavailable(
                f"onnxruntime here has no GPU provider ({ort.get_available_providers()})")
        return OnnxRuntimeBackend(cached_onnx(model, cache_dir), usable)
    if name == "tensorrt":
        from .tensorrt_backend import TensorRTBackend, engine_profile

        return TensorRTBackend(cached_onnx(model, cache_dir), engine_dir=cache_dir,
                               precision=precision, profile=engine_profile(max_side))
    if name == "torch_tensorrt":
        from .tensorrt_backend import engine_profile
        from .torch_tensorrt_backend import TorchTensorRTBackend

        return TorchTensorRTBackend(model, precision, profile=engine_profile(max_side))
    raise AssertionError(f"{name} is registered but has no factory here")


def _auto(model: LDRNet, cache_dir: str | Path, precision: str,
          threads: int | None, max_side: int) -> Backend:
    skipped = []
    for name in AUTO_ORDER:
        if precision not in BACKENDS[name]:
            skipped.append(f"{name}: no {precision}")
            continue
        if name in CUDA_ONLY and not torch.cuda.is_available():
            skipped.append(f"{name}: no CUDA device")
            continue
        try:
            backend = create_backend(f"{name}:{precision}", model, cache_dir, threads,
                                     max_side)
        except (BackendUnavailable, ImportError) as exc:
            skipped.append(f"{name}: {exc}")
            continue
        log.info("backend auto chose %s; skipped %s", name, "; ".join(skipped) or "nothing")
        backend.selection = {"chosen": name, "skipped": skipped}
        return backend
    raise BackendUnavailable("no backend can run here: " + "; ".join(skipped))
