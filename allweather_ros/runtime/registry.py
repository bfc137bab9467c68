"""Backends by name, with the precisions each accepts: the one list the node's parameter rule,
the CLI and `auto` ask (no heavy import here, so asking is free)."""
from __future__ import annotations

from glob import glob
from pathlib import Path

BACKENDS = {
    "tensorrt": ("fp32", "fp16"),
    "torch_tensorrt": ("fp32", "fp16"),
    "onnxruntime-gpu": ("fp32",),
    "torch-cuda": ("fp32", "fp16", "bf16"),
    "onnxruntime": ("fp32", "int8"),
    "torch": ("fp32", "fp16", "bf16"),
}
"""Backend name -> the precisions it runs at (fp32 first: the default). int8 only where its
calibration data is supplied: onnxruntime's static QDQ int8, calibrated on training-synthesis
frames (quantize.py); TensorRT's int8 would need a calibration table nothing passes yet."""
AUTO_ORDER = ("tensorrt", "onnxruntime-gpu", "torch-cuda", "onnxruntime", "torch")
"""What `auto` tries, fastest first; with a precision, only the backends that accept it."""
CUDA_ONLY = ("tensorrt", "torch_tensorrt", "onnxruntime-gpu", "torch-cuda")
"""Backends that need a CUDA device: `auto` skips them where there is none."""
NAMES = ("auto", *BACKENDS)
PRECISIONS = tuple(dict.fromkeys(p for accepted in BACKENDS.values() for p in accepted))


def accepted(name: str) -> tuple[str, ...]:
    """The precisions `name` accepts; `auto` accepts what any backend it tries accepts."""
    if name == "auto":
        return tuple(p for p in PRECISIONS if any(p in BACKENDS[b] for b in AUTO_ORDER))
    return BACKENDS[name]


def parse_backend(spec: str) -> tuple[str, str]:
    """`NAME[:PRECISION]` -> (name, precision), precision defaulting to fp32; a ValueError
    says what is allowed."""
    name, _, precision = spec.partition(":")
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")
    precision = precision or "fp32"
    if precision not in accepted(name):
        raise ValueError(f"backend {name} runs at {', '.join(accepted(name))}, "
                         f"not {precision!r}")
    return name, precision


def cuda_possible() -> bool:
    """Whether this machine may have a CUDA device, asked without importing torch: an NVIDIA
    driver's files (/proc/driver/nvidia, /dev/nvidia*) or a Jetson's GPU (/dev/nvhost-*)."""
    return (Path("/proc/driver/nvidia").exists()
            or bool(glob("/dev/nvidia*")) or bool(glob("/dev/nvhost-*")))


def auto_without_cuda(precision: str) -> str:
    """The backend `auto` picks at `precision` on a machine without CUDA: the first CPU one
    in AUTO_ORDER that accepts it."""
    return next(name for name in AUTO_ORDER
                if name not in CUDA_ONLY and precision in BACKENDS[name])


def valid(spec: str) -> bool:
    try:
        parse_backend(spec)
    except ValueError:
        return False
    return True


def rule() -> str:
    """The backend option's rule, in words."""
    return "NAME[:PRECISION], " + "; ".join(f"{name}: {', '.join(accepted(name))}"
                                            for name in NAMES)
