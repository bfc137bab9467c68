"""restore_node over real DDS: the node runs in its own process, this test process publishes
camera frames and listens to what the node publishes, in a ROS domain of its own.

Most checks share one node (starting one costs seconds: torch, the text encoder, the model),
so they are written to hold whatever ran before them; SIGINT ends that node last.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from allweather_ros.model import LDRNet  # noqa: E402
from allweather_ros.model.weights import save_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "config" / "fastdds_shm.xml"
START_S = 120.0  # a node start on a loaded 2-core machine: imports, text encoder, model
STEP_S = 30.0
CAMERAS = ["/cam_a/image_raw", "/cam_b/image_raw", "/cam_c/image_raw/compressed"]
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)  # the prior at once


@contextlib.contextmanager
def claimed_domain(name: str):
    """A ROS domain id (1..101) no other test process holds: a lock file per id, starting
    from a hash of the test name and pid so that concurrent runs rarely even collide."""
    start = zlib.crc32(f"{name}:{os.getpid()}".encode())
    for offset in range(101):
        domain = (start + offset) % 101 + 1
        with open(f"/tmp/allweather_ros_domain_{domain}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield domain
            return
    raise RuntimeError("every ROS domain id is taken by another test process")


def ros_env(domain: int) -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(domain),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE), "PYTHONUNBUFFERED": "1"}


def wait_until(predicate, what: str, timeout: float = STEP_S):
    """Poll `predicate` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class NodeProcess:
    """`python -m allweather_ros.ros.restore_node` with a params file; output collected."""

    def __init__(self, params: dict, domain: int, tmp: Path, *extra: str):
        path = tmp / "params.yaml"
        path.write_text(yaml.safe_dump({"restore_node": {"ros__parameters": params}}))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "allweather_ros.ros.restore_node", "--ros-args",
             "--params-file", str(path), *extra],
            env=ros_env(domain), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float = STEP_S) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait()


class Probe:
    """This process's side: publishers and inboxes in their own context and domain."""

    def __init__(self, domain: int):
        for key, value in ros_env(domain).items():
            os.environ.setdefault(key, value)  # Fast DDS reads its profile at first use
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()
        self._publishers = {}

    def publisher(self, message_type: type, topic: str):
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(message_type, topic, 10)
        return self._publishers[topic]

    def inbox(self, message_type: type, topic: str, qos=BEST_EFFORT) -> list:
        received = []
        self.node.create_subscription(message_type, topic, received.append, qos)
        return received

    def call(self, future, what: str):
        wait_until(future.done, what)
        return future.result()

    def parameter_client(self, node: str, timeout: float) -> AsyncParameterClient:
        """A parameter client of `node` that has had an answer. Discovering the services does
        not mean the server has matched this side's reply reader yet: the first request's
        reply can be lost (a DDS race seen in CI), so a get, safe to repeat, is sent again
        until one is answered."""
        client = AsyncParameterClient(self.node, node)
        assert client.wait_for_services(timeout), f"{node}'s parameter services not found"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            future = client.get_parameters(["use_sim_time"])
            answered = time.monotonic() + 2.0
            while not future.done() and time.monotonic() < answered:
                time.sleep(0.02)
            if future.done():
                return client
        pytest.fail(f"{node} never answered a get_parameters in {timeout:.0f} s")

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def image(width: int = 64, height: int = 48, encoding: str = "bgr8", stamp: int = 1,
          frame_id: str = "cam", seed: int = 0) -> Image:
    channels = {"mono8": 1, "rgb8": 3, "bgr8": 3}[encoding]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels,
                data=pixels.tobytes())
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = stamp
    return msg


def publish_until(publisher, make, inbox: list, accept, what: str, period: float = 0.05):
    """Publish `make(i)` every `period` s (best effort may lose any one frame) until a message
    in `inbox` passes `accept`, and return that message."""
    deadline = time.monotonic() + STEP_S
    for i in range(sys.maxsize):
        publisher.publish(make(i))
        found = next((m for m in reversed(inbox) if accept(m)), None)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {STEP_S:.0f} s waiting for {what}")
        time.sleep(period)


def diagnostics(inbox: list, name: str = "/restore_node: restoration") -> dict[str, str]:
    """Key/values of the newest status called `name`."""
    for array in reversed(inbox):
        for status in array.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values}
    return {}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A tiny restorer that takes the text encoder's 384-d prior tokens."""
    torch.manual_seed(0)
    return save_weights(LDRNet(**{**TINY, "prior_dim": 384}),
                        tmp_path_factory.mktemp("weights") / "tiny.safetensors")


def node_params(weights: Path, **overrides) -> dict:
    """The torch backend: no export to wait for (the ONNX Runtime one is timed by the bench)."""
    return {"input_topics": CAMERAS, "weights": str(weights), "backend": "torch",
            "threads": 1, "diagnostics_period_s": 0.3,
            "publish_colour_map": True,
            "prior": {"provider": "fixed", "fixed_text": "light rain", "period_s": 0.3},
            "qos_overrides": {"/cam_a/restored/image_raw": {
                "publisher": {"reliability": "best_effort"}}},
            **overrides}


@pytest.fixture(scope="module")
def node(domain, probe, tiny_weights, tmp_path_factory):
    """The shared node, started and seen subscribing to every camera."""
    process = NodeProcess(node_params(tiny_weights), domain,
                          tmp_path_factory.mktemp("node"))
    for topic in CAMERAS:
        kind = CompressedImage if topic.endswith("/compressed") else Image
        publisher = probe.publisher(kind, topic)
        wait_until(lambda p=publisher: p.get_subscription_count() or process.process.poll()
                   is not None, f"the node to subscribe to {topic}", START_S)
    assert process.process.poll() is None, process.output
    yield process
    process.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def diag(probe) -> list:
    return probe.inbox(DiagnosticArray, "/diagnostics", 10)


def test_restored_frame_keeps_header_and_encoding_and_map_follows(node, probe):
    restored = probe.inbox(Image, "/cam_a/restored/image_raw")
    maps = probe.inbox(Image, "/cam_a/restored/degradation_map")
    colours = probe.inbox(Image, "/cam_a/restored/degradation_map/colour")
    publisher = probe.publisher(Image, "/cam_a/image_raw")
    out = publish_until(publisher, lambda i: image(stamp=1000 + i, frame_id=f"cam_a_{i}"),
                        restored, lambda m: m.header.stamp.sec >= 1000, "a restored frame")
    assert out.header.frame_id == f"cam_a_{out.header.stamp.sec - 1000}"
    assert (out.encoding, out.width, out.height, out.step) == ("bgr8", 64, 48, 192)
    assert len(out.data) == 192 * 48
    same = publish_until(publisher, lambda i: image(stamp=2000 + i, frame_id=f"m{i}"), maps,
                         lambda m: m.header.stamp.sec >= 2000, "a degradation map")
    assert (same.encoding, same.width, same.height) == ("32FC1", 64, 48)
    assert same.header.frame_id == f"m{same.header.stamp.sec - 2000}"
    values = np.frombuffer(same.data, np.float32)
    assert np.all((values >= 0) & (values <= 1))
    colour = publish_until(publisher, lambda i: image(stamp=3000 + i), colours,
                           lambda m: m.header.stamp.sec >= 3000, "a colour map")
    assert colour.encoding == "rgb8"


def test_prior_and_diagnostics_are_published(node, probe, diag, tiny_weights):
    priors = probe.inbox(String, "/cam_b/restored/prior", LATCHED)
    # The refresher describes frames: until cam_b's first one, its prior is the generic one.
    fixed = publish_until(probe.publisher(Image, "/cam_b/image_raw"), lambda i: image(),
                          priors, lambda m: json.loads(m.data)["provider"] == "fixed",
                          "the fixed prior")
    prior = json.loads(fixed.data)
    assert prior["source_text"] == "light rain"
    assert prior["text"] == ("The image is degraded by slight rain streaks across the whole "
                             "frame.")
    assert set(prior["labels"]) == {"rain", "raindrop", "snow", "haze"}
    assert prior["age_s"] >= 0
    assert prior["frame_gate_opening"] == 0.0  # a user's words leave the gate to the frame
    values = wait_until(lambda: diagnostics(diag), "diagnostics")
    for key in ("fps", "latency_ms_p50", "latency_ms_p99", "overhead_ms_p50", "overhead_ms_p99",
                "inference_ms_p50", "frames_dropped", "bad_frames", "prior_age_s",
                "prior_provider", "prior_alive", "prior_consecutive_failures"):
        assert key in values, key
    assert values["backend"] == "torch" and values["state"] == "active"
    digest = hashlib.sha256(tiny_weights.read_bytes()).hexdigest()[:16]
    assert values["restorer_weights"] == f"{tiny_weights} (sha256 {digest})"
    assert "estimator_weights" not in values  # the fixed provider reads no frames
    assert diagnostics(diag, "/restore_node: /cam_c/image_raw/compressed")


def test_two_cameras_at_once(node, probe):
    a = probe.inbox(Image, "/cam_a/restored/image_raw")
    b = probe.inbox(Image, "/cam_b/restored/image_raw")
    pub_a, pub_b = probe.publisher(Image, "/cam_a/image_raw"), probe.publisher(Image,
                                                                              "/cam_b/image_raw")

    def both(i):
        pub_a.publish(image(encoding="rgb8", stamp=5000 + i, frame_id="a"))
        return image(width=32, height=24, encoding="mono8", stamp=5000 + i, frame_id="b")

    publish_until(pub_b, both, b, lambda m: m.header.stamp.sec >= 5000
                  and any(x.header.stamp.sec >= 5000 for x in a), "frames from both cameras")
    out_a = next(m for m in reversed(a) if m.header.stamp.sec >= 5000)
    out_b = next(m for m in reversed(b) if m.header.stamp.sec >= 5000)
    assert (out_a.encoding, out_a.header.frame_id, out_a.width) == ("rgb8", "a", 64)
    assert (out_b.encoding, out_b.header.frame_id, out_b.width) == ("mono8", "b", 32)


def test_a_camera_nobody_watches_is_not_restored(node, probe, diag):
    """Nothing subscribes to cam_c's outputs yet: its frames are counted, not restored."""
    name = "/restore_node: /cam_c/image_raw/compressed"
    publisher = probe.publisher(CompressedImage, "/cam_c/image_raw/compressed")
    jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    values = publish_until(publisher, lambda i: CompressedImage(format="jpeg", data=jpeg),
                           diag, lambda array: int(diagnostics([array], name).get("skipped", 0)),
                           "skipped frames counted")
    assert diagnostics([values], name)["processed"] == "0"


def test_camera_info_is_relayed_beside_the_restored_frame_with_its_stamp(node, probe):
    infos = probe.inbox(CameraInfo, "/cam_a/restored/camera_info")
    restored = probe.inbox(Image, "/cam_a/restored/image_raw")
    calibration = CameraInfo(width=64, height=48, distortion_model="plumb_bob")
    calibration.k[0], calibration.header.stamp.sec = 123.0, 1
    info_publisher = probe.publisher(CameraInfo, "/cam_a/camera_info")
    publisher = probe.publisher(Image, "/cam_a/image_raw")

    def make(i):
        info_publisher.publish(calibration)
        return image(stamp=50000 + i, frame_id="cam_a")

    info = publish_until(publisher, make, infos, lambda m: m.header.stamp.sec >= 50000,
                         "a relayed camera_info")
    assert info.k[0] == 123.0 and info.width == 64 and info.header.frame_id == "cam_a"
    wait_until(lambda: any(m.header.stamp == info.header.stamp for m in restored),
               "the restored frame with the camera_info's stamp")


def test_a_raw_camera_gets_a_compressed_output_while_subscribed(node, probe):
    compressed = probe.inbox(CompressedImage, "/cam_a/restored/image_raw/compressed")
    publisher = probe.publisher(Image, "/cam_a/image_raw")
    out = publish_until(publisher, lambda i: image(stamp=60000 + i), compressed,
                        lambda m: m.header.stamp.sec >= 60000, "a restored compressed frame")
    assert out.format == "bgr8; jpeg compressed bgr8"
    assert cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)


def test_compressed_input_gives_compressed_output(node, probe):
    restored = probe.inbox(CompressedImage, "/cam_c/restored/image_raw/compressed")
    publisher = probe.publisher(CompressedImage, "/cam_c/image_raw/compressed")
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), np.uint8)
    jpeg = cv2.imencode(".jpg", pixels)[1].tobytes()

    def make(i):
        msg = CompressedImage(format="jpeg", data=jpeg)
        msg.header.stamp.sec, msg.header.frame_id = 7000 + i, "cam_c"
        return msg

    out = publish_until(publisher, make, restored, lambda m: m.header.stamp.sec >= 7000,
                        "a restored compressed frame")
    assert out.format == "jpeg" and out.header.frame_id == "cam_c"
    decoded = cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (48, 64, 3)
    raw = probe.inbox(Image, "/cam_c/restored/image_raw")
    frame = publish_until(publisher, make, raw, lambda m: m.header.stamp.sec >= 7000,
                          "a restored raw frame of the compressed camera")
    assert (frame.encoding, frame.width, frame.height) == ("bgr8", 64, 48)


def test_bad_frames_are_survived_counted_and_warned_once(node, probe, diag):
    before = int(wait_until(lambda: diagnostics(diag), "diagnostics")["bad_frames"])
    publisher = probe.publisher(Image, "/cam_a/image_raw")
    short_step = image(stamp=8000)
    short_step.step = 10
    publisher.publish(short_step)
    misspelt = image(stamp=8001)
    misspelt.encoding = "rgb9"
    publisher.publish(misspelt)
    corrupt = CompressedImage(format="jpeg", data=b"\xff\xd8garbage\xff\xd9")
    probe.publisher(CompressedImage, "/cam_c/image_raw/compressed").publish(corrupt)
    wait_until(lambda: int(diagnostics(diag).get("bad_frames", 0)) >= before + 2,
               "bad frames counted in diagnostics")
    restored = probe.inbox(Image, "/cam_a/restored/image_raw")
    publish_until(publisher, lambda i: image(stamp=9000 + i), restored,
                  lambda m: m.header.stamp.sec >= 9000, "a good frame after bad ones")
    warnings = [line for line in node.lines if "bad frame skipped" in line]
    assert warnings and "/cam_a/image_raw" in node.output
    assert any("step 10" in w or "'rgb9'" in w or "JPEG" in w for w in warnings)
    # throttled: one warning per call site per warn_throttle_s (5 s), not one per frame
    assert len(warnings) < int(diagnostics(diag)["bad_frames"])
    assert node.process.poll() is None


def test_drops_are_counted_and_the_newest_frame_served(node, probe, diag):
    before = int(wait_until(lambda: diagnostics(diag), "diagnostics")["frames_dropped"])
    # reliable, like the node's output: what the node publishes reaches the test
    restored = probe.inbox(Image, "/cam_b/restored/image_raw", RELIABLE)
    publisher = probe.publisher(Image, "/cam_b/image_raw")
    burst = [image(320, 240, "rgb8", stamp=20000 + i, seed=i % 4) for i in range(300)]
    for msg in burst:
        publisher.publish(msg)
    # The camera side is best effort, so any one frame of the burst, the last included, may be
    # lost in transport; a frame after the burst stands for "the newest" (that exactly the last
    # frame is served: test_ros_node_slots). It is restored, and not behind a queue: most of the
    # burst was dropped from the slot, and no frame older than one served came after it.
    publish_until(publisher, lambda i: image(320, 240, "rgb8", stamp=21000 + i), restored,
                  lambda m: m.header.stamp.sec >= 21000, "a frame after the burst restored")
    stamps = [m.header.stamp.sec for m in restored if m.header.stamp.sec >= 20000]
    assert stamps == sorted(stamps)  # never an older frame after a newer one
    served = sum(1 for s in stamps if s < 21000)
    assert served < len(burst) // 2, f"{served} of {len(burst)} burst frames served: queued"
    wait_until(lambda: int(diagnostics(diag)["frames_dropped"]) > before,
               "dropped frames counted in diagnostics")


def test_parameters_change_at_run_time_and_bad_values_are_refused(node, probe):
    client = probe.parameter_client("restore_node", STEP_S)
    set_ = client.set_parameters
    response = probe.call(set_([Parameter("prior.fixed_text", value="dense fog")]), "set")
    assert response.results[0].successful, response.results[0].reason
    priors = probe.inbox(String, "/cam_a/restored/prior", LATCHED)
    publisher = probe.publisher(Image, "/cam_a/image_raw")  # the prior follows the frames
    publish_until(publisher, lambda i: image(stamp=29000 + i), priors,
                  lambda m: json.loads(m.data)["source_text"] == "dense fog",
                  "the new fixed prior on the prior topic")

    response = probe.call(set_([Parameter("jpeg_quality", value=500)]), "bad set")
    refused = response.results[0]
    assert not refused.successful
    assert "jpeg_quality" in refused.reason and "500" in refused.reason
    assert "1..100" in refused.reason
    response = probe.call(set_([Parameter("weights", value="/tmp/x.safetensors")]), "ro set")
    assert not response.results[0].successful  # read-only once started

    # passthrough: the input comes back byte for byte
    assert probe.call(set_([Parameter("enabled", value=False)]), "disable").results[0].successful
    restored = probe.inbox(Image, "/cam_a/restored/image_raw")
    sent = image(stamp=30000, seed=5)
    out = publish_until(publisher, lambda i: sent, restored,
                        lambda m: m.header.stamp.sec == 30000, "a passthrough frame")
    assert bytes(out.data) == bytes(sent.data)
    assert probe.call(set_([Parameter("enabled", value=True)]), "enable").results[0].successful


def test_a_qos_override_changes_only_its_own_publisher(node, probe):
    def reliability(topic: str) -> ReliabilityPolicy:
        found = wait_until(lambda: probe.node.get_publishers_info_by_topic(topic),
                           f"the node's publisher on {topic}")
        return found[0].qos_profile.reliability

    assert reliability("/cam_a/restored/image_raw") == ReliabilityPolicy.BEST_EFFORT
    for topic in ("/cam_a/restored/degradation_map", "/cam_a/restored/degradation_map/colour",
                  "/cam_b/restored/image_raw"):
        assert reliability(topic) == ReliabilityPolicy.RELIABLE, topic


def test_a_provider_that_cannot_be_built_is_refused_in_the_answer(node, probe, diag):
    client = probe.parameter_client("restore_node", STEP_S)
    set_ = client.set_parameters
    missing = "/nonexistent/vlm_folder"
    assert probe.call(set_([Parameter("prior.vlm_model", value=missing)]),
                      "set the VLM folder").results[0].successful
    answer = probe.call(set_([Parameter("prior.provider", value="vlm")]), "switch to vlm")
    assert not answer.results[0].successful
    assert "vlm" in answer.results[0].reason and missing in answer.results[0].reason
    kept = probe.call(client.get_parameters(["prior.provider"]), "get the provider")
    assert kept.values[0].string_value == "fixed"
    values = wait_until(lambda: (v := diagnostics(diag)) and missing in v["refused_change"]
                        and v, "the refusal in diagnostics")
    assert values["prior_primary"] == "fixed"
    assert probe.call(set_([Parameter("prior.vlm_model", value="")]), "reset").results[0]\
        .successful


def test_incompatible_qos_is_logged_naming_the_topic_and_the_override(node, probe):
    wants_history = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.inbox(Image, "/cam_b/restored/degradation_map", wants_history)
    line = wait_until(lambda: next((x for x in node.lines if "incompatible QoS" in x), None),
                      "the incompatible-QoS error")
    assert "/cam_b/restored/degradation_map" in line and "DURABILITY" in line
    assert "qos_overrides./cam_b/restored/degradation_map.publisher.durability" in line


def test_sigint_exits_cleanly_while_frames_flow(node, probe):
    publisher = probe.publisher(Image, "/cam_a/image_raw")
    stop = threading.Event()

    def stream():
        i = 0
        while not stop.wait(0.01):
            publisher.publish(image(stamp=40000 + i))
            i += 1

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        code = node.stop(signal.SIGINT)
    finally:
        stop.set()
        streamer.join()
    assert code == 0, node.output
    assert "Traceback" not in node.output and "exception" not in node.output.lower()


@pytest.mark.parametrize("extra, expected", [
    ((), ["'backend' = 'tensorrtx'", "onnxruntime", "'prior.period_s' = -1.0", "> 0"]),
    (("-p", "threads:=many"), ["'threads'", "many"]),
], ids=["bad-values", "wrong-type"])
def test_invalid_parameters_refuse_to_start(extra, expected, tiny_weights,
                                            tmp_path, request):
    params = node_params(tiny_weights, backend="tensorrtx")
    params["prior"]["period_s"] = -1.0
    with claimed_domain(request.node.name) as domain:
        process = NodeProcess(params, domain, tmp_path, *extra)
        code = process.wait(START_S)
    assert code != 0
    for text in expected:
        assert text in process.output, process.output
    assert "Traceback" not in process.output


def test_without_autostart_it_waits_unconfigured_and_sigterm_is_clean(tiny_weights,
                                                                      tmp_path, request):
    with claimed_domain(request.node.name) as domain:
        process = NodeProcess(node_params(tiny_weights, autostart=False), domain,
                              tmp_path)
        probe = Probe(domain)
        try:
            client = probe.parameter_client("restore_node", START_S)
            response = probe.call(client.get_parameters(["autostart"]), "get")
            assert response.values[0].bool_value is False
            publisher = probe.publisher(Image, "/cam_a/image_raw")
            assert publisher.get_subscription_count() == 0  # not subscribed until activated
            code = process.stop(signal.SIGTERM)
        finally:
            probe.close()
    assert code == 0, process.output
    assert "Traceback" not in process.output
