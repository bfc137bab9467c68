"""Camera streams that change under a running restore_node, over real DDS: a camera that
switches resolution (and encoding) mid-stream, and a camera whose driver dies and comes back.
The node runs in its own process and ROS domain (helpers from test_ros_node_integration);
every wait is on a count or a message, never a fixed sleep.
"""
from __future__ import annotations

import signal

import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from test_ros_node_integration import (  # noqa: E402
    START_S,
    NodeProcess,
    Probe,
    diagnostics,
    image,
    node_params,
    publish_until,
    tiny_weights,  # noqa: F401  (the session fixture)
    wait_until,
)

RESIZING = "/rz_a/image_raw"
COMING_AND_GOING = "/rz_b/image_raw"
CHANNELS = {"mono8": 1, "rgb8": 3, "bgr8": 3}


@pytest.fixture(scope="module")
def diag(probe) -> list:
    return probe.inbox(DiagnosticArray, "/diagnostics", 10)


@pytest.fixture(scope="module")
def node(domain, probe, diag, tiny_weights, tmp_path_factory):  # noqa: F811
    process = NodeProcess(node_params(tiny_weights, input_topics=[RESIZING, COMING_AND_GOING],
                                      publish_colour_map=False),
                          domain, tmp_path_factory.mktemp("node"))
    publisher = probe.publisher(Image, RESIZING)
    wait_until(lambda: publisher.get_subscription_count() or process.process.poll() is not None,
               "the node to subscribe", START_S)
    assert process.process.poll() is None, process.output
    yield process
    assert process.stop(signal.SIGINT) == 0, process.output
    assert "Traceback" not in process.output


def counters(diag: list, processed_beyond: int = -1) -> dict[str, int]:
    """The node's frame counters from the newest diagnostics that count more than
    `processed_beyond` processed frames (diagnostics come once a second: wait for them)."""
    def newest():
        values = diagnostics(diag)
        if values and int(values["frames_processed"]) > processed_beyond:
            return {key: int(values[key])
                    for key in ("bad_frames", "failed_frames", "frames_processed")}
        return None

    return wait_until(newest, f"diagnostics counting more than {processed_beyond} frames")


def test_a_camera_that_changes_resolution_mid_stream(node, probe, diag):
    before = counters(diag)
    restored = probe.inbox(Image, "/rz_a/restored/image_raw")
    maps = probe.inbox(Image, "/rz_a/restored/degradation_map")
    publisher = probe.publisher(Image, RESIZING)
    sizes = [(64, 48, "bgr8"), (96, 72, "bgr8"), (33, 17, "rgb8"), (40, 30, "mono8"),
             (64, 48, "bgr8")]
    for k, (width, height, encoding) in enumerate(sizes):
        base = 1000 * (k + 1)

        def make(i, w=width, h=height, e=encoding, b=base):
            return image(w, h, e, stamp=b + i, frame_id=f"{w}x{h}")

        def both_at_the_new_size(msg, b=base):
            return msg.header.stamp.sec >= b and any(r.header.stamp.sec >= b for r in restored)

        degradation = publish_until(publisher, make, maps, both_at_the_new_size,
                                    f"restored frame and map at {width}x{height} {encoding}")
        out = next(r for r in reversed(restored) if r.header.stamp.sec >= base)
        assert (out.width, out.height, out.encoding) == (width, height, encoding)
        assert out.step == width * CHANNELS[encoding] and len(out.data) == out.step * height
        assert out.header.frame_id == f"{width}x{height}"
        assert (degradation.width, degradation.height) == (width, height)
    after = counters(diag, processed_beyond=before["frames_processed"])
    assert (after["bad_frames"], after["failed_frames"]) == (before["bad_frames"],
                                                            before["failed_frames"])
    assert node.process.poll() is None


def test_a_camera_that_disappears_and_returns(node, probe, diag, domain):
    restored = probe.inbox(Image, "/rz_b/restored/image_raw")
    for visit, base in enumerate((3000, 4000)):
        camera = Probe(domain)  # a participant of its own, like a camera driver's process
        try:
            publisher = camera.publisher(Image, COMING_AND_GOING)
            wait_until(publisher.get_subscription_count, f"the node to match camera {visit}")
            publish_until(publisher, lambda i, b=base: image(stamp=b + i), restored,
                          lambda m, b=base: m.header.stamp.sec >= b,
                          f"a restored frame from camera visit {visit}")
        finally:
            camera.close()  # the driver dies
        wait_until(lambda: probe.node.count_publishers(COMING_AND_GOING) == 0,
                   "the camera to leave the graph")
        heard = len(diag)
        wait_until(lambda h=heard: len(diag) >= h + 2,
                   "diagnostics to keep coming while the camera is away")
        assert node.process.poll() is None, node.output
    status = diagnostics(diag, f"/restore_node: {COMING_AND_GOING}")
    assert int(status["failed_frames"]) == 0 and int(status["processed"]) >= 2
