"""`allweather eval-bag --live`: the bag replayed through the real restore_node process at the
recorded rate, and what the node published recorded, as on the vehicle.

The measures are ros2_benchmark's: frames the node missed (published by the player, never
answered), end-to-end latency from publishing a frame to receiving its restored frame (matched
by the preserved header stamp), frame-to-frame jitter of the output and its rate. The node runs
in its own ROS domain on loopback with the shared-memory Fast DDS profile (camera frames do not
fit the default segment), and the player starts only when the node's subscription has matched,
which happens once its pipeline is built. Quality is scored afterwards from the recorded bag.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from ..options import OPTIONS
from ..pipeline import PipelineConfig
from ..topics import CameraTopics, camera_topics
from .bags import COMPRESSED, TYPESTORE, BagError, BagReader, BagWriter, decode_frame, stamp_ns
from .eval_bag import (
    OUTPUT_BAG,
    Scorer,
    frame_stamps,
    gt_matching,
    output_names,
    prepare_output,
    sample_indices,
    summarize,
    write_report,
)

NODE_MODULE = "allweather_ros.ros.restore_node"
NODE_NAME = "restore_node"
PROFILE = "fastdds_shm.xml"


def fastdds_profile() -> Path:
    """config/fastdds_shm.xml of a source checkout, or of the installed package's share."""
    source = Path(__file__).resolve().parents[2] / "config" / PROFILE
    if source.is_file():
        return source
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("allweather_ros")) / "config" / PROFILE


def loopback_environment() -> dict[str, str]:
    """Loopback-only DDS with shared-memory segments big enough for camera frames."""
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(fastdds_profile())}


def node_parameters(topics: CameraTopics, config: PipelineConfig) -> dict:
    """The node's parameter file for one camera and a pipeline configuration: every option
    that sets a PipelineConfig field, nested at its dots as a params file has it."""
    parameters = {"input_topics": [topics.input],
                  "input_transport": "compressed" if topics.compressed else "raw"}
    for option in OPTIONS:
        if option.pipeline_field:
            *groups, leaf = option.name.split(".")
            table = parameters
            for group in groups:
                table = table.setdefault(group, {})
            table[leaf] = getattr(config, option.pipeline_field)
    return {NODE_NAME: {"ros__parameters": parameters}}


def free_domain(probe_s: float = 0.5) -> int:
    """A ROS domain with no other participant on this machine, so that parallel runs (tests,
    other evaluations) never see each other's frames; the pid picks where to start looking."""
    import rclpy

    for offset in range(100):
        domain_id = 1 + (os.getpid() + offset) % 100
        context = rclpy.Context()
        with _environment(loopback_environment()):
            rclpy.init(context=context, domain_id=domain_id)
        try:
            probe = rclpy.create_node("allweather_domain_probe", context=context)
            time.sleep(probe_s)  # discovery on loopback takes well under this
            others = [n for n, _ in probe.get_node_names_and_namespaces()
                      if n != "allweather_domain_probe"]
            probe.destroy_node()
        finally:
            rclpy.try_shutdown(context=context)
        if not others:
            return domain_id
    raise BagError("every ROS domain 1..100 has other participants on this machine")


@contextmanager
def _environment(values: dict[str, str]):
    """rclpy and Fast DDS read these when a context starts: set them for that, then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _NodeProcess:
    """restore_node in a child process, logging to a file, stopped with SIGINT like Ctrl-C."""

    def __init__(self, params: Path, env: dict[str, str], log: Path, sim_time: bool):
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", NODE_MODULE, "--ros-args", "--params-file", str(params),
             "-p", f"use_sim_time:={'true' if sim_time else 'false'}"],
            env={**os.environ, **env}, stdout=self._file, stderr=subprocess.STDOUT)

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text()[-2000:]
            raise BagError(f"restore_node exited with code {self.process.returncode}:\n{tail}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._file.close()


def heard_prior(data: str, published: int) -> dict | None:
    """A prior the node published (its JSON, `Prior.to_json`) as eval_bag records one: in force
    from the last of the `published` frames sent before it was heard; None for a message on
    the topic that is no prior's (someone else's publisher: counted, never fatal)."""
    try:
        said = json.loads(data)
        return {"index": max(published - 1, 0), "text": str(said["text"]),
                "confidence": said.get("confidence")}
    except (ValueError, KeyError, TypeError):
        return None


class _Session:
    """The player and recorder: one rclpy context and node in this process, spun in a thread."""

    def __init__(self, topics: CameraTopics, writer: BagWriter, domain_id: int, sim_time: bool,
                 stamps: set[int]):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import String

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("allweather_bag_player", context=self.context)
        frame_type = CompressedImage if topics.compressed else Image
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.publisher = self.node.create_publisher(frame_type, topics.input, reliable)
        self.clock = None
        if sim_time:
            from rosgraph_msgs.msg import Clock

            self.clock = self.node.create_publisher(Clock, "/clock", 10)
        self.writer, self.lock = writer, threading.Lock()
        self.t0_wall, self.t0_bag = time.perf_counter(), 0
        self.arrivals: dict[int, float] = {}  # restored frame's stamp -> perf_counter
        self.order: list[float] = []  # arrival times of restored frames
        self.diagnostics: dict[str, str] = {}
        self.outputs = outputs = output_names(topics)
        self.stamps, self.foreign = stamps, 0
        self.published = 0  # frames sent so far: a prior heard now holds from the last of them
        self.priors: list[dict] = []  # as eval_bag's: index, text, confidence
        self.subscriptions = [
            self.node.create_subscription(
                Image, outputs["restored"],
                lambda raw: self._record("restored", Image, raw), reliable, raw=True),
            self.node.create_subscription(
                Image, outputs["map"], lambda raw: self._record("map", Image, raw), reliable,
                raw=True),
            self.node.create_subscription(
                String, outputs["prior"], lambda raw: self._record("prior", String, raw),
                latched, raw=True),
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics,
                                          10)]
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def bag_time(self, wall: float) -> int:
        return self.t0_bag + round((wall - self.t0_wall) * 1e9)

    def _record(self, kind: str, message_type, raw: bytes) -> None:
        now = time.perf_counter()
        msgtype = message_type.__module__.split(".")[0] + "/msg/" + message_type.__name__
        message = TYPESTORE.deserialize_cdr(raw, msgtype)
        if kind == "prior":
            heard = heard_prior(message.data, self.published)
            if heard is None:
                self.foreign += 1
            else:
                self.priors.append(heard)
        else:
            stamp = stamp_ns(message.header)
            if stamp not in self.stamps:  # not an answer to this bag: someone else's frame
                self.foreign += 1
                return
        with self.lock:
            self.writer.write_raw(self.outputs[kind], msgtype, self.bag_time(now), raw)
        if kind == "restored":
            self.arrivals[stamp] = now
            self.order.append(now)

    def _diagnostics(self, array) -> None:
        for status in array.status:
            if status.name == f"/{NODE_NAME}: restoration":  # the node runs in the root ns
                self.diagnostics = {value.key: value.value for value in status.values}

    def wait_for_node(self, node: _NodeProcess, timeout: float) -> None:
        """Until the node subscribes to the input and publishes the restored topic."""
        deadline = time.monotonic() + timeout
        while not (self.publisher.get_subscription_count()
                   and self.subscriptions[0].get_publisher_count()):
            node.check()
            if time.monotonic() > deadline:
                raise BagError(f"restore_node did not subscribe within {timeout:.0f} s; "
                               f"see {node.log}")
            time.sleep(0.05)

    def publish(self, raw: bytes, bag_ns: int) -> float:
        if self.clock is not None:
            from builtin_interfaces.msg import Time
            from rosgraph_msgs.msg import Clock

            self.clock.publish(Clock(clock=Time(sec=bag_ns // 10**9, nanosec=bag_ns % 10**9)))
        self.publisher.publish(raw)
        self.published += 1
        return time.perf_counter()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.thread.join(5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _replay(session: _Session, reader: BagReader, topic: str, total: int,
            progress: bool) -> dict[int, tuple[float, int]]:
    """Publish every frame at its recorded time; stamp -> (publish time, index)."""
    sent: dict[int, tuple[float, int]] = {}
    first_bag = None
    with tqdm(total=total, desc="eval-bag --live", unit="frame", disable=not progress) as bar:
        for index, (_, msgtype, bag_ns, raw) in enumerate(reader.messages({topic})):
            if first_bag is None:
                first_bag, session.t0_wall, session.t0_bag = bag_ns, time.perf_counter(), bag_ns
            delay = session.t0_wall + (bag_ns - first_bag) / 1e9 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with session.lock:
                session.writer.write_raw(topic, msgtype, bag_ns, raw)
            try:
                stamp = stamp_ns(TYPESTORE.deserialize_cdr(raw, msgtype).header)
            except Exception:  # a corrupt message is still replayed; the node must cope
                stamp = bag_ns
            sent[stamp] = (session.publish(bytes(raw), bag_ns), index)
            bar.update()
    return sent


def _wait_for_outputs(session: _Session, sent: dict, quiet_s: float, limit_s: float) -> None:
    """Until every frame is answered, or none came for `quiet_s` (the rest were missed)."""
    deadline = time.perf_counter() + limit_s
    while len(session.arrivals) < len(sent) and time.perf_counter() < deadline:
        last = max(session.order, default=time.perf_counter())
        if time.perf_counter() - last > quiet_s:
            break
        time.sleep(0.05)


def _advance(frames, current, stamp: int):
    """The next frame of a stamp-ordered iterator at `stamp`, skipping older ones; (match or
    None, new current)."""
    while current is not None and current.stamp_ns < stamp:
        current = next(frames, None)
    if current is not None and current.stamp_ns == stamp:
        return current, next(frames, None)
    return None, current


def _score(bag: Path, topic: str, gt_topic: str | None, recorded: Path, outputs: dict,
           sent: dict, arrivals: dict) -> Scorer:
    """Per-frame records from the recorded outputs, joined to the inputs by header stamp."""
    with BagReader(bag) as reader, BagReader(recorded) as images, BagReader(recorded) as maps:
        stamps = frame_stamps(reader, topic)
        matching = gt_matching(stamps, frame_stamps(reader, gt_topic)) if gt_topic else None
        scorer = Scorer(matching, sample_indices(len(stamps)))
        restored_frames = images.frames(outputs["restored"]) \
            if outputs["restored"] in images.topics else iter(())
        map_frames = maps.frames(outputs["map"]) if outputs["map"] in maps.topics else iter(())
        restored, degradation = next(restored_frames, None), next(map_frames, None)
        index = 0
        for name, msgtype, bag_ns, raw in reader.messages({topic, gt_topic} - {None}):
            if name != topic:
                scorer.add_truth_message(msgtype, bag_ns, raw)
                continue
            frame = decode_frame(index, msgtype, bag_ns, raw)
            index += 1
            match, restored = _advance(restored_frames, restored, frame.stamp_ns)
            if frame.rgb is None or match is None or match.rgb is None:
                continue
            map_match, degradation = _advance(map_frames, degradation, frame.stamp_ns)
            record = {"index": frame.index, "stamp_ns": frame.stamp_ns,
                      "latency_ms": 1000 * (arrivals[frame.stamp_ns] - sent[frame.stamp_ns][0])}
            values = None
            if map_match is not None and map_match.error is None:
                values = map_match.rgb[..., 0]  # 32FC1 read as grey, in [0, 1]
            scorer.add(record, frame.rgb, match.rgb, values)
    return scorer


def eval_live(bag: str | Path, topic: str, out: str | Path, *, gt_topic: str | None = None,
              config: PipelineConfig | None = None, sim_time: bool = False,
              progress: bool = True, startup_timeout_s: float = 300.0,
              quiet_s: float = 5.0) -> dict:
    """Replay `topic` through restore_node at the recorded rate; report as eval_bag does."""
    config = config or PipelineConfig()
    out = prepare_output(out)
    bag = Path(bag)
    with BagReader(bag) as reader:
        info = reader.topic(topic)
        if gt_topic:
            reader.topic(gt_topic)
        stamps, notes = set(frame_stamps(reader, topic)), reader.notes
    domain_id = free_domain()
    env = {**loopback_environment(), "ROS_DOMAIN_ID": str(domain_id)}
    topics = camera_topics(topic, "compressed" if info.msgtype == COMPRESSED else "raw")
    params = out / "restore_node.yaml"
    params.write_text(yaml.safe_dump(node_parameters(topics, config)))
    node = _NodeProcess(params, env, out / "restore_node.log", sim_time)
    stopped = None
    try:
        with BagWriter(out / OUTPUT_BAG, "mcap") as writer, _environment(env):
            session = _Session(topics, writer, domain_id, sim_time, stamps)
            try:
                session.wait_for_node(node, startup_timeout_s)
                with BagReader(bag) as reader:
                    try:
                        sent = _replay(session, reader, topic, info.count, progress)
                    except KeyboardInterrupt:
                        sent, stopped = {}, "interrupted by the user"
                    stopped = stopped or reader.stopped
                _wait_for_outputs(session, sent, quiet_s, limit_s=60.0)
                arrivals, order = dict(session.arrivals), list(session.order)
                diagnostics, foreign = dict(session.diagnostics), session.foreign
                priors = list(session.priors)
            finally:
                session.close()
            counts = dict(writer.counts)
    finally:
        node.stop()
    scorer = _score(bag, topic, gt_topic, out / OUTPUT_BAG, output_names(topics), sent,
                    arrivals)
    intervals = np.diff(order) * 1000
    report = {"mode": "live", "bag": str(bag), "topic": topic, "gt_topic": gt_topic,
              "gt_matching": scorer.matching, "sim_time": sim_time, "bag_notes": notes,
              "config": asdict(config),
              "ros_domain_id": domain_id, "node_log": str(node.log),
              "node_diagnostics": diagnostics}
    report.update(summarize(scorer.records, len(sent), Counter()))
    report.update({
        "published": len(sent), "answered": len(arrivals), "foreign_messages": foreign,
        "fps": (len(order) - 1) / (order[-1] - order[0]) if len(order) > 1 else None,
        "jitter_ms": float(intervals.std()) if len(intervals) else None,
        "jitter_ms_max": float(np.abs(intervals - intervals.mean()).max())
        if len(intervals) else None,
        "stopped": stopped, "priors": priors, "output_bag": str(out / OUTPUT_BAG),
        "output_topics": counts, "per_frame": scorer.records})
    write_report(out, report, scorer.samples)
    return report
