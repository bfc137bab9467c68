"""Frame latency with and without a prior refresh in flight (issue: the refresh must not raise
the frame path's p99 by more than 10% on a 2-core CPU).

With a refresh in flight: the refresher describes frames back to back (period 0), so nearly
every frame overlaps a description. Without: the refresher idles (infinite period and change
threshold). The two conditions alternate in blocks of `--block` frames, so a machine whose
load drifts during the run (a shared host) weighs on both alike; the first frames after each
switch are not counted, and the idle blocks start once the description in flight has ended.

    .venv/bin/python tools/bench_prior_refresh.py [--provider builtin] [--frames 150]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from allweather_ros.pipeline import PipelineConfig, build_pipeline
from allweather_ros.runtime.bench import test_frame

SETTLE = 3  # frames run but not counted after each switch


def _latencies(pipeline, frame: np.ndarray, frames: int) -> list[float]:
    for _ in range(SETTLE):
        pipeline.process(frame)
    out = []
    for _ in range(frames):
        start = time.perf_counter()
        pipeline.process(frame)
        out.append(1000 * (time.perf_counter() - start))
    return out


def _describe_back_to_back(refresher, busy: bool) -> None:
    """Start describing back to back, or stop and wait for the description in flight (a
    refresh that began before the switch) to end, up to 2 s."""
    count = refresher.health()["refresh_count"]
    refresher.period = 0.0 if busy else float("inf")
    refresher.change_threshold = 0.0 if busy else float("inf")
    if busy:
        return
    deadline = time.monotonic() + 2.0
    while refresher.health()["refresh_count"] == count and time.monotonic() < deadline:
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="builtin")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--weights", default="")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--frames", type=int, default=150, help="per condition")
    parser.add_argument("--block", type=int, default=25,
                        help="frames per block; the conditions alternate block by block")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frame = test_frame(width, height)[0].permute(1, 2, 0).contiguous().numpy()
    pipeline = build_pipeline(PipelineConfig(weights=args.weights, backend=args.backend,
                                             provider=args.provider, prior_period_s=0.0,
                                             change_threshold=0.0))
    refresher = pipeline.refresher
    refresher.check_interval = 0.001
    busy, idle = [], []
    start = refresher.health()["refresh_count"]
    while len(busy) < args.frames:
        block = min(args.block, args.frames - len(busy))
        _describe_back_to_back(refresher, True)
        busy += _latencies(pipeline, frame, block)
        _describe_back_to_back(refresher, False)  # the one in flight ends here
        idle += _latencies(pipeline, frame, block)
    refreshes = refresher.health()["refresh_count"] - start  # all begun in busy blocks
    refresher.close()
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
