#!/usr/bin/env python3
"""The int8 accuracy rule of issue 20 and an interleaved speed comparison, for one recipe.

On the synthetic test split (true descriptions) it restores every frame with the fp32 and the
int8 ONNX graphs and prints the mean PSNR of each against the ground truth and of int8 against
fp32 over the frames with weather (rule: int8 within 0.2 dB of fp32), and the clean frames'
worst PSNR apart. Then it times both at --size, alternating fp32 and
int8 frame by frame in this one process, so a busy machine slows both alike; with --profile
it profiles both graphs per operator (ONNX Runtime's profiler) and prints the top operators;
with --session-options it times optimisation levels, the memory arena and execution modes.

    PYTHONPATH=. .venv/bin/python tools/int8_check.py [--method MinMax] [--exclude NODE ...]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from allweather_ros.data.datasets import synthetic_test_set
from allweather_ros.data.sources import default_scenes
from allweather_ros.evaluation.scoring import degradations_of, psnr
from allweather_ros.model.profile import parse_size
from allweather_ros.options import DEFAULT_CACHE
from allweather_ros.pipeline import load_model
from allweather_ros.prior.text_encoder import TextEncoder
from allweather_ros.runtime.bench import test_frame
from allweather_ros.runtime.export import cached_onnx
from allweather_ros.runtime.onnxruntime_backend import OnnxRuntimeBackend
from allweather_ros.runtime.quantize import Calibration, cached_int8_onnx


def restored(backend, image: torch.Tensor) -> np.ndarray:
    return np.clip(np.asarray(backend.infer(image).restored[0]), 0, 1).transpose(1, 2, 0)


def accuracy(model, fp32, int8, repeats: int) -> dict:
    encoder = TextEncoder()
    weather, clean_frames = defaultdict(list), defaultdict(list)
    for item in synthetic_test_set(default_scenes(), repeats=repeats):
        tokens = encoder.encode(item["true_text"])[None].float()
        with torch.no_grad():
            cache = model.encode_prior(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool))
        clean = item["clean"].permute(1, 2, 0).numpy()
        outs = []
        for backend in (fp32, int8):
            backend.set_prior(cache)
            outs.append(restored(backend, item["degraded"][None]))
        scores = weather if degradations_of(item) else clean_frames
        scores["fp32_vs_truth"].append(psnr(outs[0], clean))
        scores["int8_vs_truth"].append(psnr(outs[1], clean))
        scores["int8_vs_fp32"].append(psnr(outs[1], outs[0]))
    return summarise(weather, clean_frames)


def summarise(weather: dict[str, list[float]], clean: dict[str, list[float]]) -> dict:
    """Mean PSNRs over the frames with weather, where the rule is read (int8 within 0.2 dB of
    fp32 against the truth); the clean frames apart, by their worst PSNR: fp32 returns them
    untouched (an infinite PSNR), which would make any mean over them infinite."""
    result = {k: float(np.mean(v)) for k, v in weather.items()}
    result["frames"] = len(weather["int8_vs_fp32"])
    result["loss_db"] = result["fp32_vs_truth"] - result["int8_vs_truth"]
    result["clean_frames"] = len(clean.get("int8_vs_fp32", []))
    result["clean_worst"] = {k: float(min(v)) for k, v in clean.items()}
    return result


def interleaved_ms(runs: dict, rounds: int) -> dict:
    """Median latency of each callable, timed in turn A, B, A, B, ... (one warm-up each)."""
    for run in runs.values():
        run()
    times = defaultdict(list)
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: round(float(np.median(t)), 1) for name, t in times.items()}


def session_variants(onnx_path: Path, feed: dict) -> dict:
    """One-thread sessions of the graph under the settings issue 20 asks about."""
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    settings = {"ALL (default)": {}, "EXTENDED": {"graph_optimization_level":
                                                  level.ORT_ENABLE_EXTENDED},
                "ALL, no memory arena": {"enable_cpu_mem_arena": False},
                "ALL, parallel execution": {"execution_mode": ort.ExecutionMode.ORT_PARALLEL}}
    runs = {}
    for name, values in settings.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.graph_optimization_level = level.ORT_ENABLE_ALL
        for key, value in values.items():
            setattr(options, key, value)
        session = ort.InferenceSession(str(onnx_path), options,
                                       providers=["CPUExecutionProvider"])
        runs[name] = lambda session=session: session.run(None, feed)
    return runs


def top_operators(onnx_path: Path, feed: dict, frames: int = 5,
                  count: int = 10) -> list[tuple[str, float]]:
    """Share of the summed node time per operator type, from ONNX Runtime's profiler."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(frames):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_op = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
    total = sum(per_op.values())
    return [(op, us / total) for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="MinMax", choices=("MinMax", "Entropy", "Percentile"))
    parser.add_argument("--op-types", nargs="*", default=list(Calibration.op_types),
                        help="none: every type ORT quantizes")
    parser.add_argument("--int8-depthwise", action="store_true")
    parser.add_argument("--int8-head", action="store_true")
    parser.add_argument("--exclude", nargs="*", default=[])
    parser.add_argument("--frames", type=int, default=Calibration.frames)
    parser.add_argument("--repeats", type=int, default=4, help="of the test split's recipes")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", action="store_true",
                        help="per-operator profile of both graphs at --size")
    parser.add_argument("--session-options", action="store_true",
                        help="also time ORT session settings, interleaved")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    args = parser.parse_args()

    torch.set_num_threads(1)
    model = load_model()
    fp32_path = cached_onnx(model, args.cache_dir)
    recipe = Calibration(frames=args.frames, method=args.method,
                         op_types=tuple(args.op_types), exclude=tuple(args.exclude),
                         fp32_depthwise=not args.int8_depthwise, fp32_head=not args.int8_head)
    int8_path = cached_int8_onnx(model, fp32_path, args.cache_dir, recipe)
    fp32 = OnnxRuntimeBackend(fp32_path, threads=1)
    int8 = OnnxRuntimeBackend(int8_path, threads=1, precision="int8")
    print("recipe", recipe, "->", int8_path.name)
    print("accuracy", json.dumps(accuracy(model, fp32, int8, args.repeats)))
    width, height = parse_size(args.size)
    image = test_frame(width, height)
    print(f"median ms at {args.size}, 1 thread, interleaved", interleaved_ms(
        {"fp32": lambda: fp32.infer(image), "int8": lambda: int8.infer(image)}, args.rounds))
    feed = {"image": image.numpy(), **fp32._prior}
    if args.session_options:
        for path in (fp32_path, int8_path):
            print(f"{path.name}: median ms per session setting", interleaved_ms(
                session_variants(path, feed), args.rounds))
    if args.profile:
        for path in (fp32_path, int8_path):
            print(f"{path.name}: share of operator time")
            for op, share in top_operators(path, feed):
                print(f"  {op:<20} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
