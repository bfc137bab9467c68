"""restore_node: restores the newest frame of each camera topic and publishes what it found.

A managed (lifecycle) node that configures and activates itself unless `autostart` is false:
configure validates every parameter and loads the model (nothing half-configured: any bad value
fails the transition and the process exits non-zero), activate subscribes, deactivate
unsubscribes and stops the worker, cleanup frees the model.

Frames never queue (see NewestFrameSlots): one worker thread takes the newest frame of each
camera and does decode -> restore -> encode -> publish off the executor. The executor thread
only fills the slots, answers parameter services and publishes diagnostics.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidTopicNameException, ParameterException
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
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from allweather_ros.pipeline import Pipeline, PipelineConfig, build_pipeline
from allweather_ros.prior.registry import PROVIDERS, create_provider
from allweather_ros.ros.conversions import (
    JPEG_QUALITY,
    PNG_LEVEL,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    map_to_colour,
    map_to_image,
    rgb_to_compressed,
    rgb_to_image,
)
from allweather_ros.runtime.engine_cache import PRECISIONS
from allweather_ros.runtime.select import NAMES as BACKENDS

NODE_NAME = "restore_node"
TRANSPORTS = ("auto", "raw", "compressed")
_PIPELINE_DEFAULTS = PipelineConfig()
_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_DEVICE = re.compile(r"(cpu|cuda(:[0-9]{1,2})?)\Z")
_WINDOW = 512
"""Frames kept for the latency percentiles in diagnostics."""


class ConfigurationError(ValueError):
    """Parameters the node cannot run with; the text names each parameter, value and rule."""


def _topics_valid(topics: list[str]) -> bool:
    try:
        for topic in topics:
            validate_topic_name(topic)
    except InvalidTopicNameException:
        return False
    return bool(topics) and len(set(topics)) == len(topics)


def _backend_valid(spec: str) -> bool:
    name, _, precision = spec.partition(":")
    return name in BACKENDS and (not precision or precision in PRECISIONS)


def _weights_valid(path: str) -> bool:
    return not path or (path.endswith(".safetensors") and Path(path).expanduser().is_file())


def _writable_folder(path: str) -> bool:
    """A folder we can write in, or one we can create: its nearest existing parent is a
    writable folder (checked at configure, not at the first ONNX export minutes later)."""
    if not path:
        return False
    folder = Path(path).expanduser().absolute()
    while not folder.exists():
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _any_value(value: Any) -> bool:
    """For booleans and free text: rclpy's type check is the whole rule."""
    return True


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class Setting:
    """One declared parameter: its default, what it does, what it accepts, and whether it may
    change while the node runs (the others are read-only once declared)."""

    name: str
    default: Any
    description: str
    allowed: str
    check: Callable[[Any], bool]
    runtime: bool = False
    pipeline_field: str | None = None  # the PipelineConfig field it sets


def _pipeline_setting(name: str, field: str, description: str, allowed: str,
                      check: Callable[[Any], bool], runtime: bool = False) -> Setting:
    return Setting(name, getattr(_PIPELINE_DEFAULTS, field), description, allowed, check,
                   runtime, field)


SETTINGS = (
    Setting("autostart", True, "configure and activate at start; false waits for lifecycle "
            "transitions from outside", "true or false", _any_value),
    Setting("input_topics", ["/camera/image_raw"], "camera topics to restore; for /ns/image_raw "
            "the outputs are /ns/<output_namespace>/image_raw, .../degradation_map, .../prior",
            "a non-empty list of distinct valid topic names", _topics_valid),
    Setting("input_transport", "auto", "message type of every input: auto = CompressedImage "
            "for topics ending in /compressed, Image otherwise", " | ".join(TRANSPORTS),
            lambda v: v in TRANSPORTS),
    Setting("output_namespace", "restored", "namespace inserted before the input's last name "
            "for the outputs", "one name token: a letter, then letters, digits or _",
            lambda v: bool(_NAME_TOKEN.match(v))),
    Setting("enabled", True, "false: republish input frames untouched (passthrough)",
            "true or false", _any_value, runtime=True),
    Setting("publish_degradation_map", True, "publish the 32FC1 degradation map (converted "
            "only while someone subscribes)", "true or false", _any_value),
    Setting("publish_colour_map", False, "also publish an rgb8 picture of the map on "
            ".../degradation_map/colour (converted only while someone subscribes)",
            "true or false", _any_value),
    Setting("jpeg_quality", JPEG_QUALITY, "JPEG quality of restored compressed frames",
            "an integer 1..100", lambda v: 1 <= v <= 100, runtime=True),
    Setting("png_level", PNG_LEVEL, "PNG compression level of restored compressed frames",
            "an integer 0..9", lambda v: 0 <= v <= 9, runtime=True),
    Setting("diagnostics_period_s", 1.0, "period of /diagnostics and of the prior topics",
            "a number of seconds in 0.01..3600", lambda v: 0.01 <= v <= 3600),
    Setting("warn_throttle_s", 5.0, "at most one warning per this many seconds for bad frames",
            "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0, runtime=True),
    _pipeline_setting("weights", "weights", "restorer weights (.safetensors); empty: the "
                      "shipped rt weights", "empty or an existing .safetensors file",
                      _weights_valid),
    _pipeline_setting("backend", "backend", "inference backend NAME[:PRECISION]; auto picks "
                      "the fastest that runs here", f"NAME in {', '.join(BACKENDS)}, optional "
                      f":PRECISION in {', '.join(PRECISIONS)}", _backend_valid),
    _pipeline_setting("threads", "threads", "CPU threads of the backend; 0: automatic",
                      "an integer >= 0", lambda v: v >= 0),
    _pipeline_setting("processing_max_side", "processing_max_side", "frames whose longer side "
                      "exceeds this are restored at it and guided-upsampled back; 0: off",
                      "an integer >= 0", lambda v: v >= 0),
    _pipeline_setting("cache_dir", "cache_dir", "where exported ONNX files and TensorRT "
                      "engines are kept (~ expanded)", "a writable folder, or one that can be "
                      "created", _writable_folder),
    _pipeline_setting("device", "device", "where the prior provider runs",
                      "cpu, cuda or cuda:N (N < 100)", lambda v: bool(_DEVICE.match(v))),
    _pipeline_setting("prior.provider", "provider", "who describes the weather: the built-in "
                      "estimator, a VLM, a fixed text or nothing (generic prior)",
                      " | ".join(PROVIDERS), lambda v: v in PROVIDERS, runtime=True),
    _pipeline_setting("prior.vlm_model", "vlm_model", "local folder or cached hub id of the VLM "
                      "(prior.provider vlm); never downloaded", "a string (required for vlm)",
                      _any_value, runtime=True),
    _pipeline_setting("prior.fixed_text", "fixed_text", "the description used by "
                      "prior.provider fixed", "a string (required for fixed)", _any_value,
                      runtime=True),
    _pipeline_setting("prior.period_s", "prior_period_s", "describe the newest frame at "
                      "least this often", "a finite number > 0", _finite_positive, runtime=True),
    _pipeline_setting("prior.change_threshold", "change_threshold", "and sooner when the "
                      "scene's grey level changes this much", "a finite number >= 0",
                      lambda v: math.isfinite(v) and v >= 0, runtime=True),
    _pipeline_setting("prior.min_confidence", "min_confidence", "estimates below this "
                      "confidence are coarsened toward the generic prior", "a number in [0, 1]",
                      lambda v: 0 <= v <= 1, runtime=True),
    _pipeline_setting("prior.timeout_s", "prior_timeout_s", "a provider call longer than this "
                      "counts as hung (the fallback takes over)", "a finite number > 0",
                      _finite_positive, runtime=True),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
_REFRESHER_ATTRIBUTES = {"prior.period_s": "period", "prior.change_threshold": "change_threshold",
                         "prior.min_confidence": "min_confidence", "prior.timeout_s": "timeout"}
_PROVIDER_SETTINGS = ("prior.provider", "prior.vlm_model", "prior.fixed_text")


def _typed(setting: Setting, value: Any) -> bool:
    """Whether `value` has the setting's type (an integer serves where a number is asked).

    Run-time parameters are declared with dynamic typing, so that a value of the wrong type
    reaches this check and is refused with the parameter's rule, not rclpy's bare type error.
    """
    expected = type(setting.default)
    if isinstance(value, bool) or expected is bool:
        return isinstance(value, bool) and expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def problems(values: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """What is wrong with `values` (all settings, or just `names`, plus the combinations)."""
    found = []
    for name in names or list(SETTINGS_BY_NAME):
        setting = SETTINGS_BY_NAME[name]
        if not (_typed(setting, values[name]) and setting.check(values[name])):
            found.append(f"parameter {name!r} = {values[name]!r} is not allowed: "
                         f"{setting.allowed}")
    provider = values["prior.provider"]
    needed = {"fixed": "prior.fixed_text", "vlm": "prior.vlm_model"}.get(provider) \
        if isinstance(provider, str) else None
    if needed and isinstance(values[needed], str) and not values[needed].strip():
        found.append(f"parameter 'prior.provider' = {provider!r} needs {needed!r} to be set")
    return found


def output_base(topic: str, namespace: str, compressed: bool) -> tuple[str, str]:
    """(outputs' namespace, restored image topic) for an input topic.

    /ns/image_raw -> /ns/restored, /ns/restored/image_raw;
    /ns/image_raw/compressed -> /ns/restored, /ns/restored/image_raw/compressed.
    """
    parts = topic.rstrip("/").split("/")
    suffix = ""
    if compressed and len(parts) > 2 and parts[-1] == "compressed":
        parts, suffix = parts[:-1], "/compressed"
    base = "/".join([*parts[:-1], namespace])
    return base, f"{base}/{parts[-1]}{suffix}"


class FrameStats:
    """Per-frame timings of the last `_WINDOW` frames, appended by the worker and read by the
    diagnostics timer (hence the lock)."""

    KEYS = ("latency", "decode", "inference", "encode_publish", "overhead")

    def __init__(self):
        self._lock = threading.Lock()
        self._samples = {key: deque(maxlen=_WINDOW) for key in self.KEYS}
        self.processed = 0

    def add(self, **seconds: float) -> None:
        with self._lock:
            self.processed += 1
            for key, value in seconds.items():
                self._samples[key].append(value)

    def percentiles(self) -> dict[str, str]:
        """p50/p99 of each timing in milliseconds, as diagnostics values."""
        with self._lock:
            samples = {key: np.array(values) for key, values in self._samples.items()}
        out = {}
        for key, values in samples.items():
            for q in (50, 99):
                out[f"{key}_ms_p{q}"] = (f"{1000 * np.percentile(values, q):.2f}"
                                         if values.size else "n/a")
        return out


@dataclass(eq=False)
class Camera:
    """One input topic: its outputs, its newest-frame slot and its counters."""

    topic: str
    compressed: bool
    base: str
    restored_topic: str
    image_pub: Any = None
    map_pub: Any = None
    colour_pub: Any = None
    prior_pub: Any = None
    subscription: Any = None
    pending: tuple[Any, float] | None = None  # (message, perf_counter at receipt)
    received: int = 0
    processed: int = 0
    dropped: int = 0
    bad: int = 0
    failed: int = 0
    last_problem: str = ""

    @property
    def message_type(self) -> type:
        return CompressedImage if self.compressed else Image


class NewestFrameSlots:
    """Frames never queue: each camera has a one-frame slot that a newer message overwrites (the
    older frame counted as dropped), and the worker takes filled slots round robin, so a fast
    camera cannot starve a slow one. Filled by the executor thread, emptied by the worker."""

    def __init__(self):
        self._ready = threading.Condition()
        self._open = False
        self._next = 0  # round-robin position

    def put(self, camera: Camera, msg) -> None:
        with self._ready:
            if camera.pending is not None:
                camera.dropped += 1
            camera.pending = (msg, time.perf_counter())
            camera.received += 1
            self._ready.notify()

    def take(self, cameras: list[Camera]) -> tuple[Camera, Any, float] | None:
        """The next filled slot after the last one served; blocks; None once closed."""
        with self._ready:
            while self._open:
                for offset in range(len(cameras)):
                    index = (self._next + offset) % len(cameras)
                    camera = cameras[index]
                    if camera.pending is not None:
                        self._next = index + 1
                        msg, received = camera.pending
                        camera.pending = None
                        return camera, msg, received
                self._ready.wait()
        return None

    def open(self) -> None:
        with self._ready:
            self._open = True

    def close(self, cameras: list[Camera]) -> None:
        """Wake the worker to stop; a frame from before is stale after a restart."""
        with self._ready:
            self._open = False
            for camera in cameras:
                camera.pending = None
            self._ready.notify_all()


class RestoreNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._values = self._declare_settings()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._pipeline: Pipeline | None = None
        self._cameras: list[Camera] = []
        self._stats = FrameStats()
        self._slots = NewestFrameSlots()
        self._worker: threading.Thread | None = None
        self._rebuilder: ThreadPoolExecutor | None = None
        self._diagnostics_pub = None
        self._diagnostics_timer = None
        self._last_report = (time.monotonic(), 0)  # (when, frames processed by then)
        self._last_problems = 0
        self._worker_error = ""

    # -- parameters ---------------------------------------------------------------------------

    def _declare_settings(self) -> dict[str, Any]:
        """Declare every setting; a value of the wrong type raises ConfigurationError."""
        values = {}
        for s in SETTINGS:
            descriptor = ParameterDescriptor(description=s.description,
                                             additional_constraints=s.allowed,
                                             read_only=not s.runtime,
                                             dynamic_typing=s.runtime)
            try:
                value = self.declare_parameter(s.name, s.default, descriptor).value
            except ParameterException as error:
                raise ConfigurationError(f"parameter {s.name!r}: {error}; allowed: "
                                         f"{s.allowed}") from None
            if not _typed(s, value):  # dynamically typed: rclpy let any type through
                raise ConfigurationError(f"parameter {s.name!r} = {value!r} has the wrong "
                                         f"type; allowed: {s.allowed}")
            values[s.name] = value
        return values

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        """Validate run-time changes and apply them; slow ones (a new provider) off this
        thread."""
        changed = {p.name: p.value for p in parameters if p.name in SETTINGS_BY_NAME}
        if not changed:
            return SetParametersResult(successful=True)
        values = {**self._values, **changed}
        found = problems(values, list(changed))
        if found:
            return SetParametersResult(successful=False, reason="; ".join(found))
        self._values = values
        if self._pipeline is not None:
            self._apply(changed)
        return SetParametersResult(successful=True)

    def _apply(self, changed: dict[str, Any]) -> None:
        refresher = self._pipeline.refresher
        for name, value in changed.items():
            if name in _REFRESHER_ATTRIBUTES:
                setattr(refresher, _REFRESHER_ATTRIBUTES[name], value)
        if any(name in changed for name in _PROVIDER_SETTINGS):
            self._rebuilder.submit(self._swap_provider, dict(self._values))
        self.get_logger().info(f"parameters changed: {changed}")

    def _swap_provider(self, values: dict[str, Any]) -> None:
        """Build the newly chosen prior provider and hand it to the refresher; until then (and
        if it fails) the previous one keeps going."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        try:
            provider = create_provider(values["prior.provider"], pipeline.encoder,
                                       vlm_model=values["prior.vlm_model"] or None,
                                       fixed_text=values["prior.fixed_text"] or None,
                                       device=values["device"])
        except Exception as error:  # a bad model folder must not end the node
            self.get_logger().error(f"prior provider {values['prior.provider']!r} could not "
                                    f"be built, keeping {pipeline.refresher.primary.name!r}: "
                                    f"{error}")
            return
        pipeline.refresher.primary = provider
        self.get_logger().info(f"prior provider is now {provider.name!r}")

    def _pipeline_config(self) -> PipelineConfig:
        fields = {s.pipeline_field: self._values[s.name] for s in SETTINGS if s.pipeline_field}
        fields["cache_dir"] = str(Path(fields["cache_dir"]).expanduser())
        fields["weights"] = str(Path(fields["weights"]).expanduser()) if fields["weights"] else ""
        return PipelineConfig(**fields)

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
            self._pipeline = build_pipeline(self._pipeline_config(), asynchronous=True)
            for topic in self._values["input_topics"]:
                self._cameras.append(self._make_camera(topic))
        except Exception as error:  # missing weights, no backend, bad qos_overrides: say which
            self.get_logger().error(f"cannot configure: {type(error).__name__}: {error}")
            self.release()
            return TransitionCallbackReturn.FAILURE
        self._rebuilder = ThreadPoolExecutor(1, thread_name_prefix="provider-rebuild")
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self._values["diagnostics_period_s"],
                                                    self._report)
        self.get_logger().info(f"configured: backend {self._backend_name()}, cameras "
                               f"{[c.topic for c in self._cameras]}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            for camera in self._cameras:
                camera.subscription = self._subscribe(camera)
        except Exception as error:  # e.g. a bad qos_overrides value
            self.get_logger().error(f"cannot subscribe: {error}")
            self._stop_frames()
            return TransitionCallbackReturn.FAILURE
        self._slots.open()
        self._worker = threading.Thread(target=self._serve, name="restore-worker", daemon=True)
        self._worker.start()
        self.get_logger().info("active: restoring " + ", ".join(
            f"{c.topic} -> {c.restored_topic}" for c in self._cameras))
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
            if camera.subscription is not None:
                self.destroy_subscription(camera.subscription)
                camera.subscription = None
        self._slots.close(self._cameras)
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def release(self) -> None:
        """Stop frames, then free publishers, timer and the pipeline; idempotent."""
        self._stop_frames()
        if self._rebuilder is not None:
            self._rebuilder.shutdown(wait=False, cancel_futures=True)
            self._rebuilder = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self.destroy_publisher(self._diagnostics_pub)
            self._diagnostics_timer = self._diagnostics_pub = None
        for camera in self._cameras:
            for publisher in (camera.image_pub, camera.map_pub, camera.colour_pub,
                              camera.prior_pub):
                if publisher is not None:
                    self.destroy_publisher(publisher)
        self._cameras = []
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None

    # -- topics -------------------------------------------------------------------------------

    def _make_camera(self, topic: str) -> Camera:
        """The camera's publishers; its subscription waits for activation."""
        transport = self._values["input_transport"]
        compressed = (transport == "compressed"
                      or (transport == "auto" and topic.rstrip("/").endswith("/compressed")))
        base, restored = output_base(topic, self._values["output_namespace"], compressed)
        camera = Camera(topic, compressed, base, restored)
        frames = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                            history=HistoryPolicy.KEEP_LAST, depth=1)
        camera.image_pub = self._publish_to(camera.message_type, restored, frames)
        if self._values["publish_degradation_map"]:
            camera.map_pub = self._publish_to(Image, f"{base}/degradation_map", frames)
        if self._values["publish_colour_map"]:
            camera.colour_pub = self._publish_to(Image, f"{base}/degradation_map/colour", frames)
        latched = QoSProfile(reliability=ReliabilityPolicy.RELIABLE,
                             history=HistoryPolicy.KEEP_LAST, depth=1,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        camera.prior_pub = self._publish_to(String, f"{base}/prior", latched)
        return camera

    def _publish_to(self, message_type: type, topic: str, qos: QoSProfile):
        callbacks = PublisherEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(topic, "subscriber", event))
        return self.create_publisher(
            message_type, topic, qos, event_callbacks=callbacks,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def _subscribe(self, camera: Camera):
        """Best effort, depth 1 (REP-2003): the newest frame matters, a lost one does not."""
        qos = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT,
                         history=HistoryPolicy.KEEP_LAST, depth=1)
        callbacks = SubscriptionEventCallbacks(
            incompatible_qos=lambda event: self._incompatible(camera.topic, "publisher", event))
        return self.create_subscription(
            camera.message_type, camera.topic, lambda msg: self._slots.put(camera, msg), qos,
            event_callbacks=callbacks,
            qos_overriding_options=QoSOverridingOptions.with_default_policies())

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
        started = time.perf_counter()
        try:
            if not self._values["enabled"]:
                camera.image_pub.publish(msg)
                camera.processed += 1
                self._stats.add(latency=time.perf_counter() - received)
                return
            rgb = compressed_to_rgb(msg) if camera.compressed else image_to_rgb(msg)
            decoded = time.perf_counter()
            restoration = self._pipeline.process(rgb)
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
        if camera.compressed:
            out = rgb_to_compressed(restoration.restored, msg,
                                    jpeg_quality=self._values["jpeg_quality"],
                                    png_level=self._values["png_level"])
        else:
            out = rgb_to_image(restoration.restored, msg)
        camera.image_pub.publish(out)
        for publisher, convert in ((camera.map_pub, map_to_image),
                                   (camera.colour_pub, map_to_colour)):
            if publisher is not None and publisher.get_subscription_count():
                publisher.publish(convert(restoration.degradation_map, msg.header))

    def _warn(self, camera: Camera, text: str) -> None:
        camera.last_problem = text
        self.get_logger().warning(f"{camera.topic}: {text}",
                                  throttle_duration_sec=self._values["warn_throttle_s"])

    # -- diagnostics --------------------------------------------------------------------------

    def _backend_name(self) -> str:
        return str(self._pipeline.backend.describe().get("backend", "?"))

    def _report(self) -> None:
        """Publish /diagnostics and, on each camera's prior topic, the prior in use."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        now = time.monotonic()
        since, before = self._last_report
        self._last_report = (now, self._stats.processed)
        fps = (self._stats.processed - before) / max(now - since, 1e-9)
        health = pipeline.refresher.health()
        prior = pipeline.prior
        document = json.loads(prior.to_json())
        document["age_s"] = round(prior.age(), 3)
        prior_msg = String(data=json.dumps(document))
        for camera in self._cameras:
            camera.prior_pub.publish(prior_msg)
        problems_now = sum(c.bad + c.failed for c in self._cameras)
        level, message = self._level(health, problems_now - self._last_problems)
        self._last_problems = problems_now
        values = {
            "state": "active" if self._worker is not None else "inactive",
            "enabled": self._values["enabled"],
            "backend": self._backend_name(),
            "fps": f"{fps:.2f}",
            **self._stats.percentiles(),
            "frames_received": sum(c.received for c in self._cameras),
            "frames_processed": self._stats.processed,
            "frames_dropped": sum(c.dropped for c in self._cameras),
            "bad_frames": sum(c.bad for c in self._cameras),
            "failed_frames": sum(c.failed for c in self._cameras),
            "prior_text": prior.text,
            **{key if key.startswith("prior") else f"prior_{key}": value
               for key, value in health.items()},
            "worker_error": self._worker_error,
        }
        statuses = [self._status(f"{NODE_NAME}: restoration", level, message, values)]
        for camera in self._cameras:
            statuses.append(self._status(
                f"{NODE_NAME}: {camera.topic}", DiagnosticStatus.OK, camera.restored_topic,
                {"received": camera.received, "processed": camera.processed,
                 "dropped": camera.dropped, "bad_frames": camera.bad,
                 "failed_frames": camera.failed, "last_problem": camera.last_problem}))
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _level(self, health: dict, new_problems: int) -> tuple[bytes, str]:
        if self._worker_error or not health["alive"]:
            return DiagnosticStatus.ERROR, "frame worker or prior refresher stopped"
        if health["consecutive_failures"]:
            return DiagnosticStatus.WARN, f"prior provider failing: {health['last_error']}"
        if new_problems:
            return DiagnosticStatus.WARN, f"{new_problems} bad or failed frames since last report"
        return DiagnosticStatus.OK, "restoring"

    def _status(self, name: str, level: bytes, message: str, values: dict) -> DiagnosticStatus:
        return DiagnosticStatus(level=level, name=name, message=message,
                                hardware_id=self.get_fully_qualified_name(),
                                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])


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
