"""Per-backend, per-size latency, throughput and fidelity of the per-frame graph.

Each result carries GFLOP per frame (from the real graph), the achieved GFLOP/s and that as a
fraction of this machine's measured fp32 matmul ceiling, and for reduced precisions the PSNR
of the output against the fp32 PyTorch output on the same frame.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..model import LDRNet
from ..model.profile import profile
from .backend import BackendUnavailable
from .select import create_backend
from .torch_backend import TorchBackend


def matmul_ceiling(device: str = "cpu", n: int = 2048, repeats: int = 3) -> float:
    """fp32 GFLOP/s of a large square matmul: what this machine's arithmetic can reach."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = math.inf
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def test_frame(width: int, height: int) -> torch.Tensor:
    """A smooth, deterministic frame with some texture (not noise, which no camera sees)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 37.0) * np.cos(y / 23.0)
    g = 0.5 + 0.3 * np.sin((x + y) / 51.0)
    b = (x / max(width - 1, 1)) * 0.6 + 0.2
    return torch.from_numpy(np.stack([r, g, b])[None].copy())


def _psnr(a, b) -> float | None:
    """PSNR in dB of two frames in [0, 1] (numpy arrays or CPU tensors); None when they are
    identical."""
    mse = float(np.mean((np.clip(np.asarray(a, np.float64), 0, 1)
                         - np.clip(np.asarray(b, np.float64), 0, 1)) ** 2))
    return None if mse == 0 else 10 * math.log10(1.0 / mse)


def run(model: LDRNet, backends: list[str], sizes: list[tuple[int, int]], cache_dir: str | Path,
        frames: int = 20, warmup: int = 3, progress=None) -> list[dict]:
    """Time every backend at every size; a backend that cannot run here is reported, not fatal."""
    model = model.eval()
    tokens = torch.randn(1, 16, model.config["prior_dim"],
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cache = model.encode_prior(tokens, torch.ones(1, 16, dtype=torch.bool))
    reference = TorchBackend(model, "cpu")
    reference.set_prior(cache)
    ceilings: dict[str, float] = {}
    results = []
    for name in backends:
        try:
            backend = create_backend(name, model, cache_dir)
        except (BackendUnavailable, ImportError) as exc:
            results.append({"backend": name, "available": False, "reason": str(exc)})
            continue
        backend.set_prior(cache)
        info = backend.describe()
        device = "cuda" if str(info.get("device", "cpu")).startswith("cuda") else "cpu"
        if device not in ceilings:
            ceilings[device] = matmul_ceiling(device)
        for width, height in sizes:
            image = test_frame(width, height)
            for _ in range(warmup):
                out = backend.infer(image)
            latencies = []
            for _ in range(frames):
                start = time.perf_counter()
                out = backend.infer(image)
                latencies.append(time.perf_counter() - start)
                if progress:
                    progress()
            ms = np.array(latencies) * 1000
            gflops = profile(model, width, height)["gflops"]
            p50 = float(np.percentile(ms, 50))
            result = {
                **info, "backend": name, "available": True, "size": f"{width}x{height}",
                "frames": frames, "latency_ms_p50": p50,
                "latency_ms_p99": float(np.percentile(ms, 99)), "fps": 1000.0 / p50,
                "gflops": gflops, "achieved_gflops_per_s": gflops * 1000.0 / p50,
                "ceiling_gflops_per_s": ceilings[device],
                "ceiling_fraction": gflops * 1000.0 / p50 / ceilings[device],
            }
            result["psnr_vs_fp32_db"] = _psnr(out.restored, reference.infer(image).restored)
            results.append(result)
    return results


def _db(psnr: float | None) -> str:
    return "identical" if psnr is None else f"{psnr:.1f} dB"


def markdown(results: list[dict]) -> str:
    lines = ["| backend | size | p50 ms | p99 ms | FPS | GFLOP | GFLOP/s | of ceiling | "
             "PSNR vs fp32 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r["available"]:
            lines.append(f"| {r['backend']} | unavailable: {r['reason']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['backend']} | {r['size']} | {r['latency_ms_p50']:.1f} | "
            f"{r['latency_ms_p99']:.1f} | {r['fps']:.1f} | {r['gflops']:.2f} | "
            f"{r['achieved_gflops_per_s']:.1f} | {100 * r['ceiling_fraction']:.0f}% | "
            f"{_db(r['psnr_vs_fp32_db'])} |")
    return "\n".join(lines)
