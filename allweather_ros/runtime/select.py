"""Backend choice by name, and `auto`: the fastest backend this machine can run."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..model import LDRNet
from .backend import Backend, BackendUnavailable
from .export import cached_onnx
from .onnxruntime_backend import GPU_PROVIDERS, OnnxRuntimeBackend
from .quantize import cached_int8_onnx
from .torch_backend import TorchBackend

log = logging.getLogger(__name__)

NAMES = ("auto", "tensorrt", "onnxruntime", "onnxruntime-gpu", "torch", "torch-cuda")
# What `auto` tries, fastest first.
AUTO_ORDER = ("tensorrt", "onnxruntime-gpu", "torch-cuda", "onnxruntime", "torch")


def create_backend(spec: str, model: LDRNet, cache_dir: str | Path,
                   threads: int | None = None) -> Backend:
    """Build a backend from `NAME[:PRECISION]` (e.g. `torch-cuda:fp16`, `tensorrt:fp16`).

    BackendUnavailable says why a backend cannot run here. Precision defaults to fp32.
    """
    name, _, precision = spec.partition(":")
    precision = precision or "fp32"
    if name == "auto":
        return _auto(model, cache_dir, precision, threads)
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
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(cached_onnx(model, cache_dir), engine_dir=cache_dir,
                               precision=precision)
    raise ValueError(f"unknown backend {name!r}; expected one of {NAMES}")


def _auto(model: LDRNet, cache_dir: str | Path, precision: str,
          threads: int | None) -> Backend:
    skipped = []
    for name in AUTO_ORDER:
        if name in ("tensorrt", "onnxruntime-gpu", "torch-cuda") and not torch.cuda.is_available():
            skipped.append(f"{name}: no CUDA device")
            continue
        try:
            backend = create_backend(f"{name}:{precision}", model, cache_dir, threads)
        except (BackendUnavailable, ImportError) as exc:
            skipped.append(f"{name}: {exc}")
            continue
        log.info("backend auto chose %s; skipped %s", name, "; ".join(skipped) or "nothing")
        backend.selection = {"chosen": name, "skipped": skipped}
        return backend
    raise BackendUnavailable("no backend can run here: " + "; ".join(skipped))
