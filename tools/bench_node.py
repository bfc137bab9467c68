"""Benchmark restore_node live: a 30 Hz 640x480 rgb8 camera in one process, the node in
another (started as `allweather launch` would), and this process timing the restored frames.

Frame age is receipt of the restored frame minus the input's header stamp (one machine, one
clock), so it includes transport both ways, the wait in the node's slot and the processing.
The node's own view (FPS, drops, per-frame overhead outside inference) is read from
/diagnostics at the end.

    .venv/bin/python tools/bench_node.py [--weights FILE] [--seconds 30] [--backend onnxruntime]
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
        before = dict(diagnostics)
        counting.set()
        started = time.monotonic()
        time.sleep(args.seconds)
        counting.clear()
        elapsed = time.monotonic() - started
        after = dict(diagnostics)
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
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="restorer weights (default: shipped, else random rt)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--provider", default="none",
                        help="prior provider (none: time the frame path alone)")
    parser.add_argument("--threads", type=int, default=0)
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
    return _publish(args) if args.publish else _bench(args)


if __name__ == "__main__":
    sys.exit(main())
