#!/usr/bin/env python3
"""Build, check and time every backend this machine can run, against PyTorch fp32 on the CPU.

Meant for a GPU machine (a Jetson, a desktop GPU, a lent cloud GPU), and runs anywhere:
- TensorRT present: exports the ONNX, builds fp32 and fp16 engines (through the engine cache,
  so a second run loads them) and runs them; torch_tensorrt too when it is installed;
- CUDA torch: fp32, fp16 and bf16 with channels_last, and with --compile torch.compile and
  CUDA graphs; onnxruntime's GPU providers when that build has them;
- always (unless --skip-cpu): torch and onnxruntime on the CPU.
Per backend and size it reports the PSNR of the restored frame against the fp32 reference
(both clamped to [0, 1]), the max abs error of the restored frame and of the degradation map,
the share of matching expert indices, latency p50/p99 (CPU frame in, CPU outputs back, as
the node sees it) and FPS. It prints a markdown table and writes JSON. torch-cuda:fp32 runs
with torch's defaults, i.e. TF32 convolutions on Ampere and later GPUs.

    .venv/bin/python tools/gpu_check.py --config rt --json gpu_check.json [--weights W]
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not
from allweather_ros.model import LDRNet, build_model
from allweather_ros.model.profile import parse_size, profile
from allweather_ros.model.weights import load_weights
from allweather_ros.runtime.backend import Backend, BackendUnavailable
from allweather_ros.runtime.bench import test_frame
from allweather_ros.runtime.engine_cache import ShapeProfile
from allweather_ros.runtime.export import export_onnx
from allweather_ros.runtime.onnxruntime_backend import GPU_PROVIDERS, OnnxRuntimeBackend
from allweather_ros.runtime.torch_backend import TorchBackend

SIZES = ("640x480", "1280x720", "1920x1080")


def load_model(variant: str, weights: str | None) -> LDRNet:
    """Trained weights (the network their file describes, frame gate included), or the
    variant with seeded random ones (fine for parity and speed).

    A fresh LDRNet starts as the identity (its output conv is zero), which would make every
    backend's restored frame trivially equal to the input; random weights therefore get
    PyTorch's default init in the zeroed weight tensors too, so the whole graph shows.
    """
    if weights:
        return load_weights(weights)
    torch.manual_seed(0)
    model = build_model(variant).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim > 1 and not param.any():
                torch.nn.init.kaiming_uniform_(param, a=math.sqrt(5))
    return model


def candidates(model: LDRNet, onnx: Callable[[], Path], engine_dir: Path,
               sizes: list[tuple[int, int]], compile_: bool,
               skip_cpu: bool) -> list[tuple[str, Callable[[], Backend]]]:
    """(label, factory) for every backend worth trying; a factory may raise BackendUnavailable."""
    def torch_on(device, precision, **options):
        return lambda: TorchBackend(copy.deepcopy(model), device, precision, **options)

    out = []
    if not skip_cpu:
        out += [("torch-cpu:fp32", torch_on("cpu", "fp32")),
                ("onnxruntime-cpu:fp32", lambda: OnnxRuntimeBackend(onnx()))]
    if not torch.cuda.is_available():
        return out
    for precision in ("fp32", "fp16", "bf16"):
        out.append((f"torch-cuda:{precision}",
                    torch_on("cuda", precision, channels_last=True)))
    if compile_:
        out += [("torch-cuda:fp16+compile", torch_on("cuda", "fp16", channels_last=True,
                                                      compile=True)),
                ("torch-cuda:fp16+cudagraphs", torch_on("cuda", "fp16", channels_last=True,
                                                         cuda_graphs=True))]

    def onnxruntime_gpu():
        import onnxruntime as ort

        usable = tuple(p for p in GPU_PROVIDERS if p in ort.get_available_providers())
        if not usable:
            raise BackendUnavailable(f"no GPU provider in {ort.get_available_providers()}")
        return OnnxRuntimeBackend(onnx(), usable)

    out.append(("onnxruntime-gpu:fp32", onnxruntime_gpu))
    shape_profile = ShapeProfile.from_sizes(sizes)

    def tensorrt(precision):
        def make():
            from allweather_ros.runtime.tensorrt_backend import TensorRTBackend

            return TensorRTBackend(onnx(), engine_dir, precision, shape_profile)
        return make

    def torch_tensorrt():
        from allweather_ros.runtime.torch_tensorrt_backend import TorchTensorRTBackend

        return TorchTensorRTBackend(copy.deepcopy(model), "fp16", shape_profile)

    out += [("tensorrt:fp32", tensorrt("fp32")), ("tensorrt:fp16", tensorrt("fp16")),
            ("torch_tensorrt:fp16", torch_tensorrt)]
    return out


def parity(got, want) -> dict:
    """How far a backend's outputs are from the fp32 reference on the same frame and prior
    (numpy arrays from ONNX Runtime, tensors from the others: both read as numpy)."""
    got, want = ([np.asarray(t) for t in out] for out in (got, want))
    mse = float(np.mean((np.clip(got[0], 0, 1) - np.clip(want[0], 0, 1)) ** 2))
    return {
        "psnr_db": None if mse == 0 else 10 * math.log10(1 / mse),  # None: identical
        "max_abs_err": float(np.abs(got[0] - want[0]).max()),
        "map_max_abs_err": float(np.abs(got[1] - want[1]).max()),
        "indices_agree": float((got[3] == want[3]).mean()),
    }


def timing(backend: Backend, image: torch.Tensor, frames: int, warmup: int) -> dict:
    for _ in range(warmup):
        backend.infer(image)
    ms = []
    for _ in range(frames):
        start = time.perf_counter()
        backend.infer(image)
        ms.append((time.perf_counter() - start) * 1000)
    p50 = float(np.percentile(ms, 50))
    return {"latency_ms_p50": p50, "latency_ms_p99": float(np.percentile(ms, 99)),
            "fps": 1000 / p50}


def run(args) -> dict:
    model = load_model(args.config, args.weights)
    sizes = [parse_size(s) for s in args.size]
    tokens = torch.randn(1, 16, model.config["prior_dim"],
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prior = model.encode_prior(tokens, torch.ones(1, 16, dtype=torch.bool))
    reference = TorchBackend(copy.deepcopy(model), "cpu")
    reference.set_prior(prior)
    frames = {size: test_frame(*size) for size in sizes}
    wanted = {size: reference.infer(frame) for size, frame in frames.items()}
    engine_dir = Path(args.engine_dir)
    onnx_path: list[Path] = []

    def onnx() -> Path:  # exported once, on first use
        if not onnx_path:
            name = f"ldr-{Path(args.config).stem}{'' if args.weights else '-random'}.onnx"
            onnx_path.append(export_onnx(model, engine_dir / name))
        return onnx_path[0]

    results = []
    for label, factory in candidates(model, onnx, engine_dir, sizes, args.compile,
                                     args.skip_cpu):
        print(f"-- {label}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            backend = factory()
            backend.set_prior(prior)
        except (BackendUnavailable, ImportError) as exc:
            results.append({"backend": label, "available": False, "reason": str(exc)})
            continue
        except Exception as exc:  # a broken backend is a finding, not the end of the check
            traceback.print_exc()
            results.append({"backend": label, "available": False,
                            "reason": f"failed: {type(exc).__name__}: {exc}"})
            continue
        setup_s = time.perf_counter() - start
        for size in sizes:
            width, height = size
            row = {"backend": label, "available": True, "size": f"{width}x{height}",
                   "setup_s": setup_s, "gflops": profile(model, width, height)["gflops"]}
            try:
                row |= parity(backend.infer(frames[size]), wanted[size])
                row |= timing(backend, frames[size], args.frames, args.warmup)
                row["describe"] = backend.describe()
            except Exception as exc:
                traceback.print_exc()
                row |= {"error": f"{type(exc).__name__}: {exc}"}
            results.append(row)
        del backend
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"machine": machine(), "model": {"config": args.config, "weights": args.weights,
                                            "random_weights": not args.weights},
            "frames": args.frames, "results": results}


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
                 "sm_count": props.multi_processor_count, "cuda": torch.version.cuda}
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except ImportError:
        info["tensorrt"] = None
    return info


def markdown(report: dict) -> str:
    lines = ["| backend | size | p50 ms | p99 ms | FPS | GFLOP | PSNR vs fp32 | max abs err | "
             "map max abs err | experts agree | setup s |", "|" + "---|" * 11]
    for r in report["results"]:
        if not r["available"]:
            lines.append(f"| {r['backend']} | unavailable: {r['reason']} |" + " |" * 9)
        elif "error" in r:
            lines.append(f"| {r['backend']} | {r['size']} | error: {r['error']} |" + " |" * 8)
        else:
            psnr = "identical" if r["psnr_db"] is None else f"{r['psnr_db']:.1f} dB"
            lines.append(
                f"| {r['backend']} | {r['size']} | {r['latency_ms_p50']:.2f} | "
                f"{r['latency_ms_p99']:.2f} | {r['fps']:.1f} | {r['gflops']:.2f} | {psnr} | "
                f"{r['max_abs_err']:.2e} | {r['map_max_abs_err']:.2e} | "
                f"{100 * r['indices_agree']:.1f}% | {r['setup_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="rt",
                        help="variant (rt, base) or a YAML model file, for random weights "
                             "(a --weights file names its own network)")
    parser.add_argument("--weights",
                        help="trained weights, a safetensors file (default: random weights)")
    parser.add_argument("--size", nargs="+", default=list(SIZES), help="WIDTHxHEIGHT ...")
    parser.add_argument("--frames", type=int, default=30, help="timed frames per size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also torch.compile/CUDA graphs")
    parser.add_argument("--skip-cpu", action="store_true", help="leave out the CPU backends")
    parser.add_argument("--engine-dir", default="engines", help="ONNX and TensorRT engine cache")
    parser.add_argument("--json", default="gpu_check.json", help="where the report goes")
    args = parser.parse_args(argv)
    report = run(args)
    print(f"machine: {json.dumps(report['machine'])}")
    print(markdown(report))
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
