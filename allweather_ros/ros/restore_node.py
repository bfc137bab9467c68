"""restore_node: restores the newest frame of each camera and publishes what it found.

A managed (lifecycle) node that configures and activates itself unless `autostart` is false:
configure validates every parameter and loads the model (nothing half-configured: any bad value
fails the transition and the process exits non-zero), activate subscribes, deactivate
unsubscribes and stops the worker, cleanup frees the model.

Frames never queue (see ros/slots.py): one worker thread takes the newest frame of each camera
and does decode -> restore -> encode -> publish off the executor, skipping the work for outputs
nobody subscribes to (a camera nobody watches is not restored at all). The executor thread only
fills the slots, answers parameter services and publishes diagnostics. Parameters: ros/
parameters.py (from the core options table); topics: topics.py; diagnostics: ros/diagnostics.py.
"""
from __future__ import annotations

import copy
import json
import signal
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_policy_name_from_kind,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from allweather_ros.frames import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    map_to_colour,
    map_to_image,
    rgb_to_compressed,
    rgb_to_image,
)
from allweather_ros.options import BY_NAME, problems
from allweather_ros.pipeline import Pipeline, build_pipeline
from allweather_ros.prior.frame_gate_opening import frame_gate_opening
from allweather_ros.ros.diagnostics import camera_level, restoration_level, status
from allweather_ros.ros.parameters import (
    ConfigurationError,
    declare,
    pipeline_config,
    pipeline_fields,
)
from allweather_ros.ros.slots import Camera, FrameStats, NewestFrameSlots
from allweather_ros.topics import camera_topics

NODE_NAME = "restore_node"
RAW_OF_COMPRESSED = "bgr8"
"""Encoding of the raw restored frame of a compressed camera (image_transport decodes to it)."""
COMPRESSED_OF_RAW = "jpeg compressed bgr8"
"""Format of the compressed restored frame of a raw camera (compressed_image_transport's)."""


class RestoreNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._values = declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._pipeline: Pipeline | None = None
        self._cameras: list[Camera] = []
        self._stats = FrameStats()
        self._slots = NewestFrameSlots()
        self._worker: threading.Thread | None = None
        self._diagnostics_pub = None
        self._diagnostics_timer = None
        self._last_report = (time.monotonic(), 0)  # (when, frames processed by then)
        self._last_problems = 0
        self._worker_error = ""
        self._refused = ""  # the last refused parameter change, until one is accepted

    # -- parameters ---------------------------------------------------------------------------

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Validate run-time changes and apply them; one the pipeline cannot take (a provider
        that cannot be built, a working resolution its TensorRT engine was not built for) is
        refused, the parameter keeps its value and diagnostics show why. A new provider is
        built here, so the answer waits for it (seconds for a VLM)."""
        changed = {p.name: p.value for p in parameters if p.name in BY_NAME}
        if not changed:
            return SetParametersResult(successful=True)
        values = {**self._values, **changed}
        found = problems(values, list(changed))
        if found:
            return SetParametersResult(successful=False, reason="; ".join(found))
        if self._pipeline is not None:
            try:
                self._pipeline.reconfigure(**pipeline_fields(changed))
            except Exception as error:  # e.g. a VLM folder that does not load
                self._refused = (f"{', '.join(f'{k}={v!r}' for k, v in changed.items())} "
                                 f"refused: {type(error).__name__}: {error}")
                self.get_logger().error(self._refused)
                return SetParametersResult(successful=False, reason=self._refused)
        self._values, self._refused = values, ""
        self.get_logger().info(f"parameters changed: {changed}")
        return SetParametersResult(successful=True)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def autostart(self) -> bool:
        return self._values["autostart"]

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        found = problems(self._values)
        for problem in found:
            self.get_logger().error(problem)
        if found:
            return TransitionCallbackReturn.FAILURE
        try:
            self._pipeline = build_pipeline(pipeline_config(self._values), asynchronous=True)
            for topic in self._values["input_topics"]:
                self._cameras.append(self._make_camera(topic))
        except Exception as error:  # missing weights, no backend, bad qos_overrides: say which
            self.get_logger().error(f"cannot configure: {type(error).__name__}: {error}")
            self.release()
            return TransitionCallbackReturn.FAILURE
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self._values["diagnostics_period_s"],
                                                    self._report)
        weights = ", ".join(f"{role} {file}"
                            for role, file in self._pipeline.describe()["weights"].items())
        self.get_logger().info(f"configured: backend {self._backend_name()}, cameras "
                               f"{[c.topic for c in self._cameras]}, {weights}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            for camera in self._cameras:
                self._subscribe(camera)
        except Exception as error:  # e.g. a bad qos_overrides value
            self.get_logger().error(f"cannot subscribe: {error}")
            self._stop_frames()
            return TransitionCallbackReturn.FAILURE
        self._slots.open()
        self._worker = threading.Thread(target=self._serve, name="restore-worker", daemon=True)
        self._worker.start()
        self.get_logger().info("active: restoring " + ", ".join(
            f"{c.topic} -> {c.topics.restored}" for c in self._cameras))
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_frames()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def start(self) -> bool:
        """Configure and activate (autostart); False if either transition failed."""
        return (self.trigger_configure() == TransitionCallbackReturn.SUCCESS
                and self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    def _stop_frames(self) -> None:
        """Unsubscribe and stop the worker (what deactivate undoes); idempotent."""
        for camera in self._cameras:
            for subscription in (camera.subscription, camera.info_subscription):
                if subscription is not None:
                    self.destroy_subscription(subscription)
            camera.subscription = camera.info_subscription = None
        self._slots.close(self._cameras)
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def release(self) -> None:
        """Stop frames, then free publishers, timer and the pipeline; idempotent."""
        self._stop_frames()
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_timer = self._diagnostics_pub = None
        for camera in self._cameras:
            for publisher in camera.publishers():
                self.destroy_publisher(publisher)
        self._cameras = []
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    # -- topics -------------------------------------------------------------------------------

    def _make_camera(self, topic: str) -> Camera:
        """The camera's publishers; its subscriptions wait for activation."""
        topics = camera_topics(topic, self._values["input_transport"],
                               self._values["output_namespace"])
        camera = Camera(topics)
        camera.image_pub = self._publish_to(Image, topics.restored)
        camera.compressed_pub = self._publish_to(CompressedImage, topics.restored_compressed)
        camera.info_pub = self._publish_to(CameraInfo, topics.restored_camera_info)
        if self._values["publish_degradation_map"]:
            camera.map_pub = self._publish_to(Image, topics.degradation_map)
        if self._values["publish_colour_map"]:
            camera.colour_pub = self._publish_to(Image, topics.colour_map)
        camera.prior_pub = self._publish_to(String, topics.prior,
                                            DurabilityPolicy.TRANSIENT_LOCAL)
        return camera

    def _publish_to(self, message_type: type, topic: str,
                    durability: DurabilityPolicy = DurabilityPolicy.VOLATILE):
        """Reliable, depth 1; a profile of its own, because rclpy writes a qos_overrides value
        into the profile it is given (a shared one would carry it to every publisher)."""
        qos = QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         depth=1, durability=durability)
        callbacks = PublisherEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, "subscriber", event))
        return self.create_publisher(
            message_type, topic, qos, event_callbacks=callbacks,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def _subscribe(self, camera: Camera) -> None:
        """Frames and camera_info best effort, depth 1 (REP-2003): the newest matters, a lost
        one does not (a best-effort subscription also matches a reliable camera)."""
        def subscribe(message_type, topic, callback):
            qos = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                             history=HistoryPolicy.KEEP_LAST, depth=1)
            callbacks = SubscriptionEventCallbacks(
                incompatible_qos=lambda event: self._incompatible(topic, "publisher", event))
            return self.create_subscription(
                message_type, topic, callback, qos, event_callbacks=callbacks,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())

        frames = CompressedImage if camera.topics.compressed else Image
        camera.subscription = subscribe(frames, camera.topic,
                                        lambda msg: self._slots.put(camera, msg))
        camera.info_subscription = subscribe(CameraInfo, camera.topics.camera_info,
                                             lambda msg: setattr(camera, "info", msg))

    def _incompatible(self, topic: str, peer: str, event) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        side = "subscription" if peer == "publisher" else "publisher"
        self.get_logger().error(
            f"{topic}: a {peer} with incompatible QoS ({policy}) was found and gets no "
            f"messages ({event.total_count} so far); change it, or override this node's with "
            f"qos_overrides.{self.resolve_topic_name(topic)}.{side}.{policy.lower()}")

    # -- frames -------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while (taken := self._slots.take(self._cameras)) is not None:
                self._process(*taken)
        except Exception as error:  # a bug here must be visible in diagnostics, not silent
            self._worker_error = f"{type(error).__name__}: {error}"
            self.get_logger().fatal(f"frame worker stopped: {self._worker_error}")

    def _process(self, camera: Camera, msg, received: float) -> None:
        if not camera.watched():
            camera.skipped += 1
            return
        started = time.perf_counter()
        try:
            if not self._values["enabled"]:
                (camera.compressed_pub if camera.topics.compressed else camera.image_pub
                 ).publish(msg)
                self._relay_info(camera, msg.header)
                camera.processed += 1
                self._stats.add(latency=time.perf_counter() - received)
                return
            rgb = compressed_to_rgb(msg) if camera.topics.compressed else image_to_rgb(msg)
            decoded = time.perf_counter()
            restoration = self._pipeline.process(rgb, camera.topic, stream=True)
            camera.transient_share = restoration.transient_share
            camera.transient_state = restoration.transient_state
            camera.lights_share = restoration.lights_share
            camera.markings_share = restoration.markings_share
            camera.working_side = restoration.working_side
            inferred = time.perf_counter()
            self._publish_restoration(camera, msg, restoration)
        except ImageConversionError as error:
            camera.bad += 1
            self._warn(camera, f"bad frame skipped: {error}")
            return
        except Exception as error:  # anything a frame triggers must not end the node
            camera.failed += 1
            self._warn(camera, f"frame failed: {type(error).__name__}: {error}")
            return
        done = time.perf_counter()
        camera.processed += 1
        self._stats.add(latency=done - received, decode=decoded - started,
                        inference=inferred - decoded, encode_publish=done - inferred,
                        overhead=(decoded - started) + (done - inferred))

    def _publish_restoration(self, camera: Camera, msg, restoration) -> None:
        """Each output that someone subscribes to, with the input's header; the raw frame in the
        input's encoding (bgr8 for a compressed camera), the compressed one in its format."""
        restored, header = restoration.restored, msg.header
        compressed = camera.topics.compressed
        if camera.image_pub.get_subscription_count():
            like = Image(header=header, encoding=RAW_OF_COMPRESSED) if compressed else msg
            camera.image_pub.publish(rgb_to_image(restored, like))
        if camera.compressed_pub.get_subscription_count():
            like = msg if compressed else CompressedImage(
                header=header, format=f"{msg.encoding}; {COMPRESSED_OF_RAW}")
            camera.compressed_pub.publish(rgb_to_compressed(
                restored, like, jpeg_quality=self._values["jpeg_quality"],
                png_level=self._values["png_level"]))
        for publisher, convert in ((camera.map_pub, map_to_image),
                                   (camera.colour_pub, map_to_colour)):
            if publisher is not None and publisher.get_subscription_count():
                publisher.publish(convert(restoration.degradation_map, header, Image))
        self._relay_info(camera, header)

    def _relay_info(self, camera: Camera, header) -> None:
        """The camera's newest camera_info beside the restored frame, with the frame's header
        (restoration keeps the size, so the calibration holds)."""
        if camera.info is not None and camera.info_pub.get_subscription_count():
            info = copy.copy(camera.info)
            info.header = header
            camera.info_pub.publish(info)

    def _warn(self, camera: Camera, text: str) -> None:
        camera.last_problem = text
        self.get_logger().warning(f"{camera.topic}: {text}",
                                  throttle_duration_sec=self._values["warn_throttle_s"])

    # -- diagnostics --------------------------------------------------------------------------

    def _backend_name(self) -> str:
        return str(self._pipeline.describe()["backend"].get("backend", "?"))

    def _report(self) -> None:
        """Publish /diagnostics and, on each camera's prior topic, its prior in use."""
        if self._pipeline is None:
            return
        for camera in self._cameras:
            camera.prior_pub.publish(self._prior_message(camera))
        self._diagnostics_pub.publish(self._diagnostics())

    def _prior_message(self, camera: Camera) -> String:
        """The camera's prior in force as JSON; its `stamp` is this node's clock (sim time
        honoured) when the node first published it, its `age_s` how long it has been in force,
        its `frame_gate_opening` how far it holds the restorer's frame gate open."""
        prior = self._pipeline.prior_of(camera.topic)
        if prior is not camera.stamped[0]:
            camera.stamped = (prior, self.get_clock().now().nanoseconds / 1e9)
        document = json.loads(prior.to_json())
        document["stamp"] = camera.stamped[1]
        document["age_s"] = round(prior.age(), 3)
        document["frame_gate_opening"] = frame_gate_opening(prior)
        return String(data=json.dumps(document))

    def _diagnostics(self) -> DiagnosticArray:
        """One status for the node (its level from the worst camera's prior health) and one
        per camera, with that camera's prior."""
        now = time.monotonic()
        since, before = self._last_report
        self._last_report = (now, self._stats.processed)
        fps = (self._stats.processed - before) / max(now - since, 1e-9)
        priors = {c.topic: _prior_values(self._pipeline.prior_of(c.topic),
                                         self._pipeline.describe(c.topic)["refresher"])
                  for c in self._cameras}
        worst = max(priors.values(), key=lambda v: (v["prior_alive"] is False,
                                                    v["prior_consecutive_failures"]))
        health = {"alive": worst["prior_alive"],
                  "consecutive_failures": worst["prior_consecutive_failures"],
                  "last_error": worst["prior_last_error"]}
        active = self._worker is not None
        problems_now = sum(c.bad + c.failed for c in self._cameras)
        level, message = restoration_level(
            health, active=active, new_problems=problems_now - self._last_problems,
            worker_error=self._worker_error, refused=self._refused)
        self._last_problems = problems_now
        values = {
            "state": "active" if active else "inactive",
            "enabled": self._values["enabled"],
            "backend": self._backend_name(),
            **self._pipeline.describe()["weights"],
            "fps": f"{fps:.2f}",
            **self._stats.percentiles(),
            "frames_received": sum(c.received for c in self._cameras),
            "frames_processed": self._stats.processed,
            "frames_dropped": sum(c.dropped for c in self._cameras),
            "frames_skipped": sum(c.skipped for c in self._cameras),
            "bad_frames": sum(c.bad for c in self._cameras),
            "failed_frames": sum(c.failed for c in self._cameras),
            **worst,
            "worker_error": self._worker_error,
            "refused_change": self._refused,
        }
        node = self.get_fully_qualified_name()
        statuses = [status(f"{node}: restoration", level, message, node, values)]
        for camera in self._cameras:
            new = camera.bad + camera.failed - camera.reported_problems
            camera.reported_problems += new
            statuses.append(status(
                f"{node}: {self.resolve_topic_name(camera.topic)}",
                camera_level(active=active, new_problems=new),
                f"restored on {self.resolve_topic_name(camera.topics.restored)}", node,
                {"received": camera.received, "processed": camera.processed,
                 "skipped": camera.skipped, "dropped": camera.dropped, "bad_frames": camera.bad,
                 "failed_frames": camera.failed, "last_problem": camera.last_problem,
                 "transient_share": f"{camera.transient_share:.4f}",
                 "transient_state": camera.transient_state,
                 "lights_share": f"{camera.lights_share:.4f}",
                 "markings_share": f"{camera.markings_share:.4f}",
                 "working_side": str(camera.working_side),
                 **priors[camera.topic]}))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        return array


def _prior_values(prior, health: dict) -> dict:
    """A camera's prior and its refresher's health as diagnostics values, all `prior_*`."""
    return {"prior_text": prior.text,
            **{key if key.startswith("prior") else f"prior_{key}": value
               for key, value in health.items()}}


class _Shutdown:
    """SIGINT/SIGTERM handling that keeps the ROS context valid until the node has released
    everything (rclpy's own handlers invalidate it at once, so teardown would log into a dead
    context). Before spinning, a signal aborts loading through KeyboardInterrupt."""

    def __init__(self):
        self.requested = threading.Event()
        self.spinning = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested.set()
        if not self.spinning:
            raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; 1 if it could not be configured."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    shutdown = _Shutdown()
    node = None
    executor = SingleThreadedExecutor()
    code = 0
    try:
        node = RestoreNode()
        if node.autostart and not node.start():
            node.get_logger().fatal("not started: see the errors above")
            code = 1
        else:
            executor.add_node(node)
            shutdown.spinning = True
            while not shutdown.requested.is_set():
                executor.spin_once(timeout_sec=0.1)
    except ConfigurationError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(error))
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        shutdown.spinning = False
        if node is not None:
            node.release()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
