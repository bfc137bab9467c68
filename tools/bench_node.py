"""Benchmark restore_node live: a 30 Hz 640x480 rgb8 camera in one process, the node in
another (started as `allweather launch` would), and this process timing the restored frames.

Frame age is receipt of the restored frame minus the input's header stamp (one machine, one
clock), so it includes transport both ways, the wait in the node's slot and the processing.
The node's own view (FPS, drops, per-frame overhead outside inference) is read from
/diagnostics at the end, and its resident memory (VmRSS, peak VmHWM) from /proc after warm-up.

`--parts onnx|torch` instead loads what the node loads, one part at a time, in a fresh process,
and prints what each part adds to the resident memory (docs/benchmarks.md, "Memory").

    .venv/bin/python tools/bench_node.py [--weights FILE] [--seconds 30] [--backend onnxruntime]
    .venv/bin/python tools/bench_node.py --parts onnx [--cache-dir DIR]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TOPIC = "/camera/image_raw"
RESTORED = "/camera/restored/image_raw"


def _publish(args: argparse.Namespace) -> int:
    """The camera: frames at `rate` Hz stamped when sent, reliable depth 1 (REP-2003)."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    publisher = node.create_publisher(Image, TOPIC, QoSProfile(
        reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST, depth=1))
    width, height = args.width, args.height
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), np.uint8).tobytes() for _ in range(4)]
    deadline = time.monotonic() + args.start_timeout
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            print("camera: nobody subscribed", flush=True)
            return 1
        time.sleep(0.05)
    period, sent = 1.0 / args.rate, 0
    next_at = time.monotonic()
    end = next_at + args.publish_seconds
    while next_at < end:
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3,
                    data=frames[sent % len(frames)])
        msg.header.frame_id = "bench_camera"
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        sent += 1
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(f"camera: sent {sent} frames", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _weights(path: str | None, tmp: Path) -> str:
    """The given weights, else the shipped ones, else random rt-sized ones (same cost)."""
    from allweather_ros.pipeline import DEFAULT_WEIGHTS

    if path:
        return path
    if DEFAULT_WEIGHTS.is_file():
        return str(DEFAULT_WEIGHTS)
    import torch

    from allweather_ros.model import build_model
    from allweather_ros.model.weights import save_weights

    print("shipped weights missing: timing random rt-sized weights", flush=True)
    torch.manual_seed(0)
    return str(save_weights(build_model("rt"), tmp / "rt_random.safetensors"))


def memory_mb(pid: int | str = "self") -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MB (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def loaded_torch(pid: int | str = "self") -> bool:
    """Whether the process has torch's library mapped (Linux)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _parts(args: argparse.Namespace) -> int:
    """Load the node's parts one at a time (`--parts onnx`: the torch-free ONNX Runtime path;
    `torch`: the torch prior) and print what each adds to VmRSS, at a 640x480 frame."""
    steps: list[tuple[str, float]] = []

    def step(name: str) -> None:
        steps.append((name, memory_mb()["VmRSS"]))

    import cv2  # noqa: F401  the frame conversions' libraries

    step("interpreter + numpy + cv2")
    import rclpy

    rclpy.init()
    node = rclpy.create_node("memory_parts")
    step("rclpy (init, one node)")
    import onnxruntime  # noqa: F401

    step("onnxruntime")
    from allweather_ros.description import GENERIC_TEXT
    from allweather_ros.pipeline import PipelineConfig

    config = PipelineConfig(backend="onnxruntime", weights=args.weights or "",
                            cache_dir=args.cache_dir or PipelineConfig.cache_dir)
    frame = np.random.default_rng(0).random((args.height, args.width, 3), dtype=np.float32)
    image = np.ascontiguousarray(frame.transpose(2, 0, 1)[None])
    tokens = np.random.default_rng(0).standard_normal((16, 384)).astype(np.float32)
    if args.parts == "onnx":
        from allweather_ros.pipeline import weights_path
        from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
        from allweather_ros.prior.text_encoder import text_encoder_files
        from allweather_ros.runtime.graphs import ensure_graphs
        from allweather_ros.runtime.onnx_prior import (
            OnnxEstimatorNet,
            OnnxPriorEncoding,
            OnnxTextEncoder,
        )
        from allweather_ros.runtime.onnxruntime_backend import OnnxRuntimeBackend

        weights = weights_path(config.weights)
        graphs = ensure_graphs(config.cache_dir, weights, estimator=SHIPPED_WEIGHTS,
                               text_encoder=text_encoder_files())
        step("allweather_ros modules (pipeline, prior, runtime)")
        encoding = OnnxPriorEncoding(graphs["ldr-prior"], weights)
        backend = OnnxRuntimeBackend(graphs["ldr"], threads=args.threads or None)
        backend.set_prior(encoding(tokens))
        for _ in range(3):
            backend.infer(image)
        step(f"restorer sessions (frame graph at {args.width}x{args.height}, prior encoding)")
        estimator = BuiltinEstimator(load_net=lambda path: OnnxEstimatorNet(path,
                                                                            config.cache_dir))
        estimator.describe(frame)
        step("estimator session (one description)")
        encoder = OnnxTextEncoder(config.cache_dir)
        backend.set_prior(encoding(encoder.encode(GENERIC_TEXT)))
        step("text encoder session + tokenizer (one encoding)")
    else:  # the torch prior, with the calls the torch path has always had
        import torch

        step("import torch")
        from allweather_ros.pipeline import load_model
        from allweather_ros.prior.builtin import BuiltinEstimator
        from allweather_ros.prior.text_encoder import TextEncoder
        from allweather_ros.runtime.select import create_backend

        torch.set_num_threads(1)
        model = load_model(config.weights)
        backend = create_backend("onnxruntime", model, config.cache_dir, args.threads or None)
        with torch.no_grad():
            cache = model.encode_prior(torch.from_numpy(tokens)[None],
                                       torch.ones(1, 16, dtype=torch.bool))
        backend.set_prior(cache)
        for _ in range(3):
            backend.infer(torch.from_numpy(image))
        step(f"restorer: torch model + ONNX Runtime frame session at {args.width}x{args.height}")
        encoder = TextEncoder()
        encoder.encode(GENERIC_TEXT)
        step("text encoder (transformers, one encoding)")
        BuiltinEstimator(encoder=encoder).describe(frame)
        step("estimator (torch, one description)")
    node.destroy_node()
    rclpy.shutdown()
    print(f"{args.parts} path, {args.width}x{args.height}")
    print("| part | adds MB | VmRSS MB |\n|---|---|---|")
    previous = 0.0
    for name, rss in steps:
        print(f"| {name} | {rss - previous:.0f} | {rss:.0f} |")
        previous = rss
    peak = memory_mb()
    print(f"| total (peak VmHWM {peak['VmHWM']:.0f}) | | {peak['VmRSS']:.0f} |")
    return 0


def _percentile(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.1f}" if values else "n/a"


def _bench(args: argparse.Namespace) -> int:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile
    from rclpy.time import Time
    from sensor_msgs.msg import Image

    from allweather_ros.ros.launcher import launch_command

    tmp = Path(tempfile.mkdtemp(prefix="bench_node_"))
    overrides = ["-p", f"input_topics:=[{TOPIC}]", "-p", f"weights:={_weights(args.weights, tmp)}",
                 "-p", f"backend:={args.backend}", "-p", f"prior.provider:={args.provider}",
                 "-p", f"threads:={args.threads}"]
    if args.cache_dir:
        overrides += ["-p", f"cache_dir:={args.cache_dir}"]
    command, env = launch_command(overrides)
    env.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "FASTDDS_DEFAULT_PROFILES_FILE") if k in env})
    node_log = open(tmp / "node.log", "w")
    restore = subprocess.Popen(command, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    camera = subprocess.Popen(
        [sys.executable, __file__, "--publish", "--width", str(args.width), "--height",
         str(args.height), "--rate", str(args.rate), "--publish-seconds",
         str(args.warmup + args.seconds + 2), "--start-timeout", str(args.start_timeout)],
        env=env, stdout=subprocess.PIPE, text=True)

    rclpy.init()
    node = rclpy.create_node("bench_probe")
    ages: list[float] = []
    counting = threading.Event()
    first = threading.Event()
    diagnostics: dict[str, str] = {}

    def on_restored(msg):
        age = (node.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds / 1e6
        first.set()
        if counting.is_set():
            ages.append(age)

    def on_diagnostics(array):
        for status in array.status:
            if status.name == "/restore_node: restoration":
                diagnostics.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(Image, RESTORED, on_restored, QoSProfile(depth=10))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        print(f"waiting for the node (log: {tmp / 'node.log'}) ...", flush=True)
        if not first.wait(args.start_timeout) or restore.poll() is not None:
            print("no restored frame arrived; see the node log", file=sys.stderr)
            return 1
        time.sleep(args.warmup)
        memory = memory_mb(restore.pid)
        torch_loaded = loaded_torch(restore.pid)
        before = dict(diagnostics)
        counting.set()
        started = time.monotonic()
        time.sleep(args.seconds)
        counting.clear()
        elapsed = time.monotonic() - started
        after = dict(diagnostics)
        memory_end = memory_mb(restore.pid)
    finally:
        restore.send_signal(signal.SIGINT)
        restore.wait(30)
        camera.wait(60)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()
        node_log.close()
    dropped = int(after.get("frames_dropped", 0)) - int(before.get("frames_dropped", 0))
    received = int(after.get("frames_received", 0)) - int(before.get("frames_received", 0))
    print(f"\n{args.width}x{args.height} rgb8 at {args.rate:g} Hz, backend {args.backend}, "
          f"provider {args.provider}, {elapsed:.1f} s measured after {args.warmup:g} s warm-up")
    print(f"processed FPS      {len(ages) / elapsed:.2f} (restored frames received here)")
    print(f"frame age ms       p50 {_percentile(ages, 50)}  p95 {_percentile(ages, 95)}  "
          f"max {_percentile(ages, 100)}")
    print(f"node received      {received} frames ({args.rate * elapsed:.0f} sent), dropped "
          f"{dropped} of them in its newest-frame slot")
    print("node per frame ms  " + "  ".join(
        f"{key} p50 {after.get(f'{key}_ms_p50', 'n/a')} p99 {after.get(f'{key}_ms_p99', 'n/a')}"
        for key in ("overhead", "decode", "encode_publish", "inference", "latency")))
    print(f"node fps (diag)    {after.get('fps', 'n/a')}")
    print(f"node memory MB     VmRSS {memory['VmRSS']:.0f} after warm-up, "
          f"{memory_end['VmRSS']:.0f} at the end; peak VmHWM {memory_end['VmHWM']:.0f}; "
          f"torch {'loaded' if torch_loaded else 'not loaded'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="restorer weights (default: shipped, else random rt)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--provider", default="none",
                        help="prior provider (none: time the frame path alone)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--cache-dir", default="", help="the node's cache_dir (default: its own)")
    parser.add_argument("--parts", choices=("onnx", "torch"),
                        help="print the memory each part of the node adds, then exit")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--start-timeout", type=float, default=300.0,
                        help="seconds for the node to start (an ONNX export the first time)")
    parser.add_argument("--domain", type=int, default=os.getpid() % 90 + 10,
                        help="ROS_DOMAIN_ID of the benchmark (keep it away from others)")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--publish-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parts:
        return _parts(args)
    return _publish(args) if args.publish else _bench(args)


if __name__ == "__main__":
    sys.exit(main())
