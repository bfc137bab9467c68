"""restore_node built in this process (its own ROS context, no peer): what it reports about
itself under a namespace and a remap, at each lifecycle state, under sim time, and what it
answers to a parameter change the pipeline cannot take."""
from __future__ import annotations

import json

import pytest

rclpy = pytest.importorskip("rclpy")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from allweather_ros.ros.restore_node import RestoreNode  # noqa: E402

SUCCESS = TransitionCallbackReturn.SUCCESS


@pytest.fixture
def make_node(domain, pipeline_config):
    """RestoreNode(name overrides..., cli_args) in a context of its own; released after."""
    made = []

    def make(*cli_args: str, **overrides):
        context = Context()
        rclpy.init(context=context, domain_id=domain)
        values = {"input_topics": ["image_raw"], "weights": pipeline_config.weights,
                  "backend": "torch", "threads": 1, "cache_dir": pipeline_config.cache_dir,
                  "prior.provider": "fixed", "prior.fixed_text": "light rain", **overrides}
        node = RestoreNode(context=context, cli_args=["--ros-args", *cli_args],
                           parameter_overrides=[Parameter(k, value=v)
                                                for k, v in values.items()])
        made.append((node, context))
        return node

    yield make
    for node, context in made:
        node.release()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def statuses(node) -> dict[str, DiagnosticStatus]:
    return {s.name: s for s in node._diagnostics().status}


def test_diagnostic_names_are_the_nodes_own_and_remapped_and_inactive_is_not_ok(make_node):
    node = make_node("-r", "__ns:=/front", "-r", "__node:=weather", "-r", "image_raw:=color")
    assert node.trigger_configure() == SUCCESS
    found = statuses(node)
    assert set(found) == {"/front/weather: restoration", "/front/weather: /front/color"}
    restoration = found["/front/weather: restoration"]
    assert restoration.level == DiagnosticStatus.WARN and "inactive" in restoration.message
    camera = found["/front/weather: /front/color"]
    assert camera.level == DiagnosticStatus.WARN
    assert camera.message == "restored on /front/restored/image_raw"
    assert restoration.hardware_id == "/front/weather"
    assert node.trigger_activate() == SUCCESS
    found = statuses(node)
    assert found["/front/weather: restoration"].level == DiagnosticStatus.OK
    assert found["/front/weather: /front/color"].level == DiagnosticStatus.OK


def test_the_prior_stamp_is_the_node_clock(make_node):
    """Under use_sim_time with no /clock yet, the node's time is 0, not the wall clock."""
    node = make_node(use_sim_time=True)
    node.trigger_configure()
    assert json.loads(node._prior_message(node._cameras[0]).data)["stamp"] == 0.0
    wall = make_node()
    wall.trigger_configure()
    stamp = json.loads(wall._prior_message(wall._cameras[0]).data)["stamp"]
    assert abs(stamp - wall.get_clock().now().nanoseconds / 1e9) < 60


def test_a_provider_that_cannot_be_built_is_refused_and_shown(make_node, tmp_path):
    node = make_node()
    node.trigger_configure()
    missing = str(tmp_path / "no_such_vlm")
    # the VLM's folder is only an option while fixed is active: nothing is built, so accepted
    assert node.set_parameters([Parameter("prior.vlm_model", value=missing)])[0].successful
    result = node.set_parameters([Parameter("prior.provider", value="vlm")])[0]
    assert not result.successful and "prior.provider='vlm'" in result.reason
    assert missing in result.reason or "no_such_vlm" in result.reason
    assert node.get_parameter("prior.provider").value == "fixed"
    assert node._pipeline.describe()["refresher"]["primary"] == "fixed"
    restoration = statuses(node)["/restore_node: restoration"]
    values = {kv.key: kv.value for kv in restoration.values}
    assert restoration.level == DiagnosticStatus.WARN and "refused" in restoration.message
    assert "vlm" in values["refused_change"]
    # an accepted change clears it
    assert node.set_parameters([Parameter("prior.provider", value="none")])[0].successful
    assert node._pipeline.describe()["refresher"]["primary"] == "none"
    values = {kv.key: kv.value for kv in statuses(node)["/restore_node: restoration"].values}
    assert values["refused_change"] == ""


def test_each_camera_publishes_its_own_prior(make_node):
    from allweather_ros.prior.prior import prior_from_text

    node = make_node(**{"input_topics": ["/front/image_raw", "/rear/image_raw"]})
    assert node.trigger_configure() == SUCCESS
    front, rear = node._cameras
    pipeline = node._pipeline
    pipeline.set_prior(prior_from_text("dense fog", "fixed", pipeline.encoder), rear.topic)
    assert json.loads(node._prior_message(rear).data)["source_text"] == "dense fog"
    assert json.loads(node._prior_message(front).data)["source_text"] != "dense fog"
    found = statuses(node)
    values = {kv.key: kv.value for kv in found["/restore_node: /rear/image_raw"].values}
    assert values["prior_text"] == pipeline.prior_of(rear.topic).text
    assert values["prior_primary"] == "fixed"


def test_a_cameras_stream_loses_its_transients_and_says_how_much(make_node):
    """The node restores a camera's frames as a stream: streaks its last frames did not have
    are taken back (transients.py), and the share is in the camera's diagnostics."""
    import time

    import numpy as np
    from sensor_msgs.msg import Image
    from test_transients import rained, scene

    node = make_node(transient_frames=3)  # off by default (options.py)
    assert node.trigger_configure() == SUCCESS and node.trigger_activate() == SUCCESS
    camera = node._cameras[0]
    camera.watched = lambda: True  # as if someone subscribed to the restored frames
    for t in range(5):
        rgb = (rained(scene(), seed=t)[0] * 255 + 0.5).astype(np.uint8)
        msg = Image(height=240, width=320, encoding="rgb8", step=320 * 3, data=rgb.tobytes())
        node._process(camera, msg, time.perf_counter())
    assert camera.processed == 5 and camera.failed == 0
    values = {kv.key: kv.value for kv in statuses(node)["/restore_node: /image_raw"].values}
    assert float(values["transient_share"]) > 0.001
    assert values["transient_state"] == "applied"


HEAVY_RAIN = "The image is degraded by heavy rain streaks across the whole frame."


def _diagnostics_told(make_node, rgb, told: str = HEAVY_RAIN, **parameters) -> dict:
    """The camera's /diagnostics values after the shipped network, told `told` (heavy rain),
    restored the 320x240 uint8 frame `rgb` (once the camera's prior says so)."""
    import time

    from sensor_msgs.msg import Image

    node = make_node(**{"weights": "", "prior.fixed_text": told, **parameters})
    assert node.trigger_configure() == SUCCESS and node.trigger_activate() == SUCCESS
    camera = node._cameras[0]
    camera.watched = lambda: True
    msg = Image(height=240, width=320, encoding="rgb8", step=320 * 3, data=rgb.tobytes())
    node._process(camera, msg, time.perf_counter())  # the camera's refresher starts describing
    deadline = time.monotonic() + 30
    while node._pipeline.prior_of(camera.topic).text != told and time.monotonic() < deadline:
        time.sleep(0.05)
    node._process(camera, msg, time.perf_counter())
    assert camera.processed == 2 and camera.failed == 0
    return {kv.key: kv.value for kv in statuses(node)["/restore_node: /image_raw"].values}


@pytest.mark.parametrize("told, working_side", [
    ("The image is degraded by heavy falling snow across the whole frame.", "160"),
    (HEAVY_RAIN, "320"),
])
def test_a_camera_told_snow_is_restored_at_the_snow_side_and_its_diagnostics_say_so(
        make_node, told, working_side):
    import numpy as np

    rgb = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    values = _diagnostics_told(make_node, rgb, told, processing_max_side_snow=160)
    assert values["working_side"] == working_side


def test_the_small_lights_a_camera_kept_are_in_its_diagnostics(make_node):
    """Told heavy rain of a clean night street, the shipped network dims its small lights and
    the pipeline puts them back (lights.py); the camera's diagnostics say how much of the frame
    that was."""
    import numpy as np
    from test_lights import lit, street

    rgb = (lit(street(0.25))[0] * 255 + 0.5).astype(np.uint8)
    assert float(_diagnostics_told(make_node, rgb)["lights_share"]) > 0


def test_the_road_markings_a_camera_kept_are_in_its_diagnostics(make_node):
    """Told heavy rain of a clean road, the shipped network dims the lane markings and the
    pipeline gives their contrast back (markings.py); the camera's diagnostics say how much of
    the frame that was."""
    import numpy as np

    from allweather_ros.data.road import road_view
    from allweather_ros.data.sources import skimage_scenes

    photo = skimage_scenes()[0].load(max_side=480).astype(np.float32) / 255.0
    rgb = (road_view(3.0, photo)[0] * 255 + 0.5).astype(np.uint8)
    assert float(_diagnostics_told(make_node, rgb)["markings_share"]) > 0


def test_a_working_resolution_the_engine_was_not_built_for_is_refused(make_node):
    """A TensorRT engine spans the frame sizes of the working resolution it was built for:
    raising processing_max_side past it is refused with the way out, not left to fail on every
    frame; a side inside it is taken."""
    from allweather_ros.runtime.engine_cache import ShapeProfile

    node = make_node()
    node.trigger_configure()
    # the profile tensorrt_backend builds for 640, as a TensorRT backend holds it
    node._pipeline.backend.profile = ShapeProfile.for_working_side(640)
    for refused in (1280, 0):
        result = node.set_parameters([Parameter("processing_max_side", value=refused)])[0]
        assert not result.successful and "restart the node" in result.reason
        assert node.get_parameter("processing_max_side").value == 640
        assert node._pipeline.config.processing_max_side == 640
    assert node.set_parameters([Parameter("processing_max_side", value=480)])[0].successful
    assert node._pipeline.config.processing_max_side == 480
