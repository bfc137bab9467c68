"""Load test of restore_node: 4 cameras at 30 Hz (640x480 rgb8, a publisher process of their
own) into one node for a set time, watching for what a long drive would reveal.

Checked, once the warm-up is over:
- resident memory of the node process (sampled every second) grows by less than 5 % over the
  run, as its trend says (a swing of the working set is not growth): a queue that grows
  without bound, or a leak, shows up here first;
- frames are accounted for: received = processed + dropped + bad + failed + the few still in
  the node's one-frame slots, so nothing piles up unseen; drops are counted and reported;
- /diagnostics keep arriving (no gap over 5 periods) and, at the end, the node still answers
  a parameter request.

    .venv/bin/python tools/load_test.py [--duration 600] [--json-out load.json]

Exit status 0 when every check passes, 1 otherwise, 2 if the node could not be started.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from scipy.stats import theilslopes

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = 4
GROWTH_LIMIT = 0.05
DIAGNOSTICS_PERIOD_S = 1.0
MAX_DIAGNOSTICS_GAP = 5  # periods
SLOT_SLACK = CAMERAS + 1  # one pending frame per camera plus the one being restored


def topics(count: int) -> list[str]:
    return [f"/load_cam{i}/image_raw" for i in range(count)]


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`: psutil when installed, else /proc/PID/status (Linux)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return psutil.Process(pid).memory_info().rss
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the cameras (run as `load_test.py --publish` in a process of their own) --------------------

def _publish(args: argparse.Namespace) -> int:
    """Publish every camera at `rate` Hz until SIGINT/SIGTERM; print the counts as JSON."""
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("load_cameras")
    qos = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                     depth=1)  # a camera driver's usual profile (REP-2003)
    names = topics(args.cameras)
    publishers = [node.create_publisher(Image, name, qos) for name in names]
    rng = np.random.default_rng(0)
    width, height = args.width, args.height
    frames = [rng.integers(0, 256, (height, width, 3), np.uint8).tobytes() for _ in range(4)]
    sent = [0] * args.cameras
    period = 1.0 / args.rate
    next_at = time.monotonic()
    while not stop.is_set():
        for index, publisher in enumerate(publishers):
            msg = Image(height=height, width=width, encoding="rgb8", step=width * 3,
                        data=frames[(sent[index] + index) % len(frames)])
            msg.header.frame_id = f"load_cam{index}"
            msg.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(msg)
            sent[index] += 1
        next_at += period
        late = time.monotonic() - next_at
        if late > period:  # overloaded: skip ticks rather than burst to catch up
            next_at += late // period * period
        stop.wait(max(0.0, next_at - time.monotonic()))
    print(json.dumps({"sent": dict(zip(names, sent, strict=True))}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# -- the observer -----------------------------------------------------------------------------

def _weights(path: str | None, folder: Path) -> tuple[str, str]:
    """(weights file, what it is): given, shipped, or random rt-sized ones (same cost)."""
    from allweather_ros.pipeline import DEFAULT_WEIGHTS

    if path:
        return path, "given"
    if DEFAULT_WEIGHTS.is_file():
        return str(DEFAULT_WEIGHTS), "shipped rt"
    import torch

    from allweather_ros.model import build_model
    from allweather_ros.model.weights import save_weights

    torch.manual_seed(0)
    return str(save_weights(build_model("rt"), folder / "rt_random.safetensors")), "random rt"


class Observer:
    """Subscribes to /diagnostics (and counts restored frames) in this process."""

    def __init__(self, names: list[str]):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("load_observer", context=self.context)
        self.lock = threading.Lock()
        self.diagnostics: dict[str, str] = {}
        self.diagnostic_times: list[float] = []
        self.restored = dict.fromkeys(names, 0)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        for name in names:
            restored = name.replace("/image_raw", "/restored/image_raw")
            self.node.create_subscription(Image, restored,
                                          lambda msg, n=name: self._on_restored(n), best_effort)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def _on_restored(self, name: str) -> None:
        with self.lock:
            self.restored[name] += 1

    def _on_diagnostics(self, array) -> None:
        for status in array.status:
            if status.name == "/restore_node: restoration":
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self.diagnostic_times.append(time.monotonic())

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.diagnostics)

    def query_parameter(self, name: str, timeout: float) -> object:
        """The node's `name` parameter through its parameter service, or None if no answer."""
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, "restore_node")
        if not client.wait_for_services(timeout):
            return None
        future = client.get_parameters([name])
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done() or not future.result().values:
            return None
        return parameter_value_to_python(future.result().values[0])

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _memory_verdict(samples: list[tuple[float, int]], warmup: float, window: float) -> dict:
    """Growth of resident memory over the measured part (after warm-up) as its trend says: the
    Theil-Sen slope (the median of the pairwise slopes, which a swing up or down does not pull)
    through the medians of consecutive `window`-second spans (so one garbage-collection peak
    does not count), times the measured time, over the first span's median. A node's working
    set swings by tens of MB as DDS and its buffers breathe; comparing the first span with the
    last read such a swing as growth in about one long run in two, while a leak rises in every
    span and moves the median slope with it."""
    measured = [(t, rss) for t, rss in samples if t >= warmup]
    if len(measured) < 4:
        return {"ok": False, "reason": "too few samples after warm-up"}
    times = np.array([t for t, _ in measured])
    rss = np.array([r for _, r in measured], dtype=np.float64)
    span = ((times - warmup) // window).astype(int)
    spans = [(float(np.median(times[span == k])), float(np.median(rss[span == k])))
             for k in np.unique(span)]
    first, last = spans[0][1], spans[-1][1]
    slope = float(theilslopes([m for _, m in spans], [t for t, _ in spans])[0]) \
        if len(spans) > 1 else 0.0
    growth = float(slope * (times[-1] - times[0]) / first)
    return {"ok": bool(growth < GROWTH_LIMIT), "rss_after_warmup_mb": round(first / 2**20, 1),
            "rss_at_end_mb": round(last / 2**20, 1), "growth_percent": round(100 * growth, 2),
            "slope_mb_per_min": round(slope * 60 / 2**20, 3),
            "peak_mb": round(float(rss.max()) / 2**20, 1)}


def node_overrides(args: argparse.Namespace, weights: str, names: list[str]) -> list[str]:
    """The node's `-p NAME:=VALUE` arguments: the cameras, weights, backend and provider under
    test, then the user's own `--param`s (later ones win)."""
    overrides = ["-p", f"input_topics:=[{','.join(names)}]", "-p", f"weights:={weights}",
                 "-p", f"backend:={args.backend}", "-p", f"prior.provider:={args.provider}",
                 "-p", f"diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}"]
    if args.provider == "fixed":
        overrides += ["-p", "prior.fixed_text:=light rain"]
    return overrides + [arg for param in args.param for arg in ("-p", param)]


def _run(args: argparse.Namespace) -> int:
    from allweather_ros.ros.launcher import launch_command

    folder = Path(tempfile.mkdtemp(prefix="load_test_"))
    weights, weights_kind = _weights(args.weights, folder)
    names = topics(args.cameras)
    command, env = launch_command(node_overrides(args, weights, names))
    env.update(ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONUNBUFFERED="1")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "FASTDDS_DEFAULT_PROFILES_FILE") if k in env})
    node_log_path = folder / "node.log"
    node_log = open(node_log_path, "w")
    node = subprocess.Popen(command, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    observer = Observer(names)
    cameras = None
    report: dict = {"duration_s": args.duration, "warmup_s": args.warmup,
                    "cameras": args.cameras, "rate_hz": args.rate,
                    "frame": f"{args.width}x{args.height} rgb8", "backend": args.backend,
                    "provider": args.provider, "weights": weights_kind,
                    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "load_average_at_start": list(os.getloadavg())},
                    "node_log": str(node_log_path)}
    try:
        print(f"starting the node (log: {node_log_path}) ...", flush=True)
        deadline = time.monotonic() + args.start_timeout
        while not observer.snapshot():
            if node.poll() is not None or time.monotonic() > deadline:
                print("the node did not start; see its log", file=sys.stderr)
                return 2
            time.sleep(0.2)
        cameras = subprocess.Popen(
            [sys.executable, __file__, "--publish", "--cameras", str(args.cameras), "--rate",
             str(args.rate), "--width", str(args.width), "--height", str(args.height)],
            env=env, stdout=subprocess.PIPE, text=True)
        report["node_pid"] = node.pid
        samples: list[tuple[float, int]] = []
        start = time.monotonic()
        next_sample = start
        while (elapsed := time.monotonic() - start) < args.duration:
            if node.poll() is not None:
                report["node_exit_code"] = node.returncode
                break
            samples.append((elapsed, rss_bytes(node.pid)))
            if len(samples) % 30 == 0:
                d = observer.snapshot()
                print(f"{elapsed:6.0f} s  rss {samples[-1][1] / 2**20:7.1f} MB  fps "
                      f"{d.get('fps', '?')}  received {d.get('frames_received', '?')}  "
                      f"dropped {d.get('frames_dropped', '?')}", flush=True)
            next_sample += 1.0
            time.sleep(max(0.0, next_sample - time.monotonic()))
        alive = node.poll() is None
        answer = observer.query_parameter("input_topics", 30.0) if alive else None
        final = observer.snapshot()
        with observer.lock:
            arrivals = [t - start for t in observer.diagnostic_times]
            restored = dict(observer.restored)
    finally:
        if cameras is not None:
            cameras.send_signal(signal.SIGINT)
            out, _ = cameras.communicate(timeout=60)
        node.send_signal(signal.SIGINT)
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
        node_log.close()
        observer.close()
    sent = json.loads(out.strip().splitlines()[-1])["sent"] if cameras and out.strip() else {}
    report["load_average_at_end"] = list(os.getloadavg())
    report["rss_samples"] = [[round(t, 1), rss] for t, rss in samples]
    memory = _memory_verdict(samples, args.warmup, args.window)
    counts = {key: int(final.get(key, 0)) for key in (
        "frames_received", "frames_processed", "frames_dropped", "bad_frames", "failed_frames")}
    backlog = counts["frames_received"] - sum(
        counts[k] for k in ("frames_processed", "frames_dropped", "bad_frames", "failed_frames"))
    measured_arrivals = [t for t in arrivals if t >= args.warmup]
    gaps = np.diff(measured_arrivals) if len(measured_arrivals) > 1 else np.array([np.inf])
    total_sent = sum(sent.values())
    report.update({
        "memory": memory,
        "frames": {"sent": total_sent, "sent_per_camera": sent, **counts,
                   "lost_in_transport": total_sent - counts["frames_received"],
                   "drop_percent": round(100 * counts["frames_dropped"]
                                         / max(counts["frames_received"], 1), 1),
                   "restored_seen_here": restored, "backlog_at_end": backlog,
                   "node_fps_last": final.get("fps"),
                   "latency_ms_p50": final.get("latency_ms_p50"),
                   "latency_ms_p99": final.get("latency_ms_p99"),
                   "inference_ms_p50": final.get("inference_ms_p50")},
        "diagnostics": {"received": len(arrivals), "max_gap_s": round(float(gaps.max()), 2),
                        "worker_error": final.get("worker_error", "")},
        "parameter_answer": answer,
    })
    checks = {
        "node alive to the end": alive,
        f"memory growth < {100 * GROWTH_LIMIT:.0f}% after warm-up": memory["ok"],
        f"diagnostics kept arriving (gap <= {MAX_DIAGNOSTICS_GAP} periods)":
            bool(gaps.max() <= MAX_DIAGNOSTICS_GAP * DIAGNOSTICS_PERIOD_S),
        "node answered a parameter request at the end": answer == names,
        f"no backlog (received - accounted <= {SLOT_SLACK})": 0 <= backlog <= SLOT_SLACK,
        "frames were restored": counts["frames_processed"] > 0,
        "frame worker healthy": not final.get("worker_error"),
    }
    report["checks"] = checks
    report["passed"] = all(checks.values())
    _print(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))
        print(f"\nJSON written to {args.json_out}")
    return 0 if report["passed"] else 1


def _print(report: dict) -> None:
    m, f, d = report["memory"], report["frames"], report["diagnostics"]
    print(f"\nload test: {report['cameras']} x {report['frame']} at {report['rate_hz']:g} Hz, "
          f"{report['duration_s']:g} s ({report['warmup_s']:g} s warm-up), backend "
          f"{report['backend']}, provider {report['provider']}, {report['weights']} weights")
    print(f"machine: {report['machine']['cpus']} CPUs, load average "
          f"{report['machine']['load_average_at_start'][0]:.1f} at start, "
          f"{report['load_average_at_end'][0]:.1f} at end")
    if "growth_percent" in m:
        print(f"memory: {m['rss_after_warmup_mb']} MB after warm-up -> {m['rss_at_end_mb']} MB "
              f"at end, trend {m['slope_mb_per_min']:+.3f} MB/min ({m['growth_percent']:+.2f}% "
              f"over the run), peak {m['peak_mb']} MB")
    print(f"frames: sent {f['sent']}, received {f['frames_received']}, processed "
          f"{f['frames_processed']}, dropped {f['frames_dropped']} ({f['drop_percent']}%), bad "
          f"{f['bad_frames']}, failed {f['failed_frames']}, lost in transport "
          f"{f['lost_in_transport']}, backlog {f['backlog_at_end']}")
    print(f"node: fps {f['node_fps_last']}, latency p50/p99 {f['latency_ms_p50']}/"
          f"{f['latency_ms_p99']} ms, inference p50 {f['inference_ms_p50']} ms")
    print(f"diagnostics: {d['received']} received, largest gap {d['max_gap_s']} s; parameter "
          f"answer {report['parameter_answer']}")
    for name, ok in report["checks"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds under load")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before memory counts (default: a tenth, 10..60 s)")
    parser.add_argument("--window", type=float, default=None,
                        help="seconds of each span whose median the memory trend is fitted "
                             "through (default: warm-up/2)")
    parser.add_argument("--cameras", type=int, default=CAMERAS)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--weights", help="restorer weights (default: shipped, else random rt)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--provider", default="builtin")
    parser.add_argument("--start-timeout", type=float, default=300.0,
                        help="seconds for the node to start (an ONNX export the first time)")
    parser.add_argument("--domain", type=int, default=os.getpid() % 90 + 10,
                        help="ROS_DOMAIN_ID (keep it away from other runs)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter beyond the defaults (repeatable), e.g. "
                             "processing_max_side:=320")
    parser.add_argument("--json-out", help="write the full report, RSS samples included, here")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.publish:
        return _publish(args)
    if args.warmup is None:
        args.warmup = min(60.0, max(10.0, args.duration / 10))
    if args.window is None:
        args.window = max(5.0, args.warmup / 2)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
