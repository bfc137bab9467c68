"""Frame latency with and without a prior refresh in flight (issue: the refresh must not raise
the frame path's p99 by more than 10% on a 2-core CPU).

With a refresh in flight: the refresher describes frames back to back (period 0), so nearly
every frame overlaps a description. Without: the refresher is stopped after its first prior.

    .venv/bin/python tools/bench_prior_refresh.py [--provider builtin] [--frames 150]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from allweather_ros.pipeline import PipelineConfig, build_pipeline
from allweather_ros.runtime.bench import test_frame


def _latencies(pipeline, frame: np.ndarray, frames: int) -> np.ndarray:
    for _ in range(5):
        pipeline.process(frame)
    out = []
    for _ in range(frames):
        start = time.perf_counter()
        pipeline.process(frame)
        out.append(time.perf_counter() - start)
    return np.array(out) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="builtin")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--weights", default="")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frame = test_frame(width, height)[0].permute(1, 2, 0).contiguous().numpy()
    pipeline = build_pipeline(PipelineConfig(weights=args.weights, backend=args.backend,
                                             provider=args.provider, prior_period_s=0.0,
                                             change_threshold=0.0))
    refresher = pipeline.refresher
    refresher.check_interval = 0.001
    busy = _latencies(pipeline, frame, args.frames)
    refreshes = refresher.health()["refresh_count"]
    refresher.close()
    idle = _latencies(pipeline, frame, args.frames)
    result = {"provider": args.provider, "backend": args.backend, "size": args.size,
              "frames": args.frames, "refreshes_during_busy_run": refreshes}
    for name, ms in (("without_refresh", idle), ("with_refresh_in_flight", busy)):
        result[name] = {"p50_ms": float(np.percentile(ms, 50)),
                        "p99_ms": float(np.percentile(ms, 99))}
    result["p99_increase"] = (result["with_refresh_in_flight"]["p99_ms"]
                              / result["without_refresh"]["p99_ms"] - 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
