"""Every option of the restorer, in one table (no ROS, no torch): name, default, rule, and
whether it may change while the node runs.

The node declares its parameters and their descriptors from it, the launch file its arguments,
the CLI the flags that share an option (default and help), PipelineConfig its defaults, and a
test checks config/restore.yaml against it. Backends and prior providers are asked through
their registries, so a rule here never lists them a second time.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .prior.registry import PROVIDERS
from .runtime import registry as backends
from .runtime.engine_cache import MIN_FRAME_SIDE
from .topics import OUTPUT_NAMESPACE, TRANSPORTS

DEFAULT_CACHE = Path(os.environ.get("ALLWEATHER_CACHE", Path.home() / ".cache" / "allweather_ros"))
"""The one default folder of exported ONNX files and TensorRT engines; ALLWEATHER_CACHE moves
it (e.g. to fast storage)."""
# prior.min_confidence defaults to 0, never coarsen. With the shipped estimator and restorer,
# every threshold tried cost end-to-end PSNR on the validation split (all weather, 186 frames:
# 23.36 dB at 0, 23.29 at 0.02, 23.22 at 0.1, 22.67 at 0.5): its confidence is the weakest
# margin over all four types, so one doubtful type coarsens a frame whose main weather is
# certain, and the generic text makes the restorer act on clean frames and lens drops. Raise it
# for a provider whose confidence is calibrated.
DEFAULT_MIN_CONFIDENCE = 0.0

_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_TOPIC = re.compile(r"(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*\Z")
_DEVICE = re.compile(r"(cpu|cuda(:[0-9]{1,2})?)\Z")


def _topics_valid(topics: list[str]) -> bool:
    """ROS 2 topic names (tokens of letters, digits and _, not starting with a digit, joined by
    /, optionally absolute or ~/), none twice, at least one."""
    return (bool(topics) and len(set(topics)) == len(topics)
            and all(_TOPIC.match(t) and "__" not in t for t in topics))


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
    """For booleans and free text: the type check is the whole rule."""
    return True


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


@dataclass(frozen=True)
class Option:
    """One option: its default, what it does, what it accepts, whether it may change while the
    node runs (the others are read-only once declared), and the PipelineConfig field it sets."""

    name: str
    default: Any
    description: str
    allowed: str
    check: Callable[[Any], bool]
    runtime: bool = False
    pipeline_field: str | None = None

    def typed(self, value: Any) -> bool:
        """Whether `value` has this option's type (an integer serves where a number is asked)."""
        expected = type(self.default)
        if isinstance(value, bool) or expected is bool:
            return isinstance(value, bool) and expected is bool
        if expected is float:
            return isinstance(value, (int, float))
        if expected is list:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)
        return isinstance(value, expected)

    def parse(self, text: str) -> Any:
        """The value of a command-line or launch-argument string (lists comma separated)."""
        kind = type(self.default)
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{self.name}: {text!r} is not true or false")
            return text.lower() == "true"
        if kind is list:
            return [item.strip() for item in text.split(",") if item.strip()]
        return kind(text)


OPTIONS = (
    Option("autostart", True, "configure and activate at start; false waits for lifecycle "
           "transitions from outside", "true or false", _any_value),
    Option("input_topics", ["/camera/image_raw"], "camera topics to restore; for /ns/image_raw "
           "the outputs are /ns/<output_namespace>/image_raw (+ /compressed), .../camera_info, "
           ".../degradation_map, .../prior", "a non-empty list of distinct valid topic names",
           _topics_valid),
    Option("input_transport", "auto", "transport of every input (image_transport naming): "
           "compressed takes sensor_msgs/CompressedImage on <topic>/compressed; auto = "
           "compressed for topics given with /compressed, raw otherwise", " | ".join(TRANSPORTS),
           lambda v: v in TRANSPORTS),
    Option("output_namespace", OUTPUT_NAMESPACE, "namespace put before the input's last name "
           "for the outputs", "one name token: a letter, then letters, digits or _",
           lambda v: bool(_NAME_TOKEN.match(v))),
    Option("enabled", True, "false: republish input frames untouched (passthrough) on the "
           "restored topic of the input's own transport",
           "true or false", _any_value, runtime=True),
    Option("publish_degradation_map", True, "publish the 32FC1 degradation map (converted "
           "only while someone subscribes)", "true or false", _any_value),
    Option("publish_colour_map", False, "also publish an rgb8 picture of the map on "
           ".../degradation_map/colour (converted only while someone subscribes)",
           "true or false", _any_value),
    Option("jpeg_quality", 95, "JPEG quality of restored compressed frames (image_transport's "
           "default)", "an integer 1..100", lambda v: 1 <= v <= 100, runtime=True),
    Option("png_level", 3, "PNG compression level of restored compressed frames "
           "(image_transport's default)", "an integer 0..9", lambda v: 0 <= v <= 9,
           runtime=True),
    Option("diagnostics_period_s", 1.0, "period of /diagnostics and of the prior topics",
           "a number of seconds in 0.01..3600", lambda v: 0.01 <= v <= 3600),
    Option("warn_throttle_s", 5.0, "at most one warning per this many seconds for bad frames",
           "a finite number >= 0", _finite_non_negative, runtime=True),
    Option("weights", "", "restorer weights (.safetensors); empty: the shipped rt weights",
           "empty or an existing .safetensors file", _weights_valid, pipeline_field="weights"),
    Option("frame_gate", True, "scale the restorer's correction by how far the frame bears it "
           "out (its frame gate): fewer light frames made worse when the description "
           "overstates the weather; the gate stands aside where the built-in estimator reads "
           "heavy rain; false: the whole correction everywhere, which makes more light frames "
           "worse (model card)", "true or false", _any_value, pipeline_field="frame_gate"),
    Option("backend", "auto", "inference backend NAME[:PRECISION]; auto picks the fastest "
           "that runs here", backends.rule(), backends.valid, pipeline_field="backend"),
    Option("threads", 0, "CPU threads of the backend; 0: automatic", "an integer >= 0",
           lambda v: v >= 0, pipeline_field="threads"),
    Option("processing_max_side", 640, "working resolution: a frame whose longer side "
           "exceeds this many pixels is restored at that size and the correction is carried "
           "back to full resolution by guided upsampling; 0: always at full resolution; "
           "a TensorRT engine is built for frames up to this side",
           "an integer >= 0", lambda v: v >= 0, runtime=True,
           pipeline_field="processing_max_side"),
    Option("processing_max_side_snow", 320, "working resolution of a frame whose prior "
           "names snow and no rain, where it is smaller than processing_max_side: real "
           "snowflakes are larger than the network's at a camera's own scale and more come out "
           "at 320 (at a third of the cost); a frame that shows lane markings (or whose "
           "camera's stream did in its last 30 frames) keeps processing_max_side: at 320 "
           "the network dims them more; 0: processing_max_side for every frame",
           f"0 or an integer >= {MIN_FRAME_SIDE}", lambda v: v == 0 or v >= MIN_FRAME_SIDE,
           runtime=True, pipeline_field="processing_max_side_snow"),
    Option("transient_frames", 0, "rain streaks and snowflakes that this many of a camera's "
           "last restored frames (aligned) agree were not there are taken out of the next; "
           "0: off (the default: few driving clips measured), 3 for a static or panning "
           "camera (it stands aside while the picture zooms)", "an integer >= 0",
           lambda v: v >= 0, runtime=True,
           pipeline_field="transient_frames"),
    Option("cache_dir", str(DEFAULT_CACHE), "where exported ONNX files and TensorRT engines are "
           "kept (~ expanded; ALLWEATHER_CACHE moves the default)", "a writable folder, or "
           "one that can be created", _writable_folder, pipeline_field="cache_dir"),
    Option("device", "cpu", "where the prior provider runs", "cpu, cuda or cuda:N (N < 100)",
           lambda v: bool(_DEVICE.match(v)), pipeline_field="device"),
    Option("prior.provider", "builtin", "who describes the weather: the built-in estimator, a "
           "VLM, a fixed text or nothing (generic prior)", " | ".join(PROVIDERS),
           lambda v: v in PROVIDERS, runtime=True, pipeline_field="provider"),
    Option("prior.vlm_model", "", "local folder or cached hub id of the VLM (prior.provider "
           "vlm); never downloaded", "a string (required for vlm)", _any_value, runtime=True,
           pipeline_field="vlm_model"),
    Option("prior.vlm_rain_check", True, "a VLM's rain severity word is weighed against the "
           "built-in estimator's reading of the same frame before the restorer hears it (told "
           "heavy of light rain, the restorer scrubs the frame); false: the VLM's word as said",
           "true or false", _any_value, runtime=True, pipeline_field="vlm_rain_check"),
    Option("prior.estimator_weights", "", "built-in estimator weights (.safetensors, its "
           "calibration inside: your own, trained or calibrated on your camera's frames); "
           "empty: the shipped estimator; also the VLM's fallback",
           "empty or an existing .safetensors file", _weights_valid,
           pipeline_field="estimator_weights"),
    Option("prior.fixed_text", "", "the description used by prior.provider fixed",
           "a string (required for fixed)", _any_value, runtime=True,
           pipeline_field="fixed_text"),
    Option("prior.period_s", 5.0, "describe the newest frame at least this often",
           "a finite number > 0", _finite_positive, runtime=True,
           pipeline_field="prior_period_s"),
    Option("prior.change_threshold", 0.08, "and sooner when the scene's grey level changes "
           "this much", "a finite number >= 0", _finite_non_negative, runtime=True,
           pipeline_field="change_threshold"),
    Option("prior.min_confidence", DEFAULT_MIN_CONFIDENCE, "estimates below this confidence "
           "are coarsened toward the generic prior", "a number in [0, 1]",
           lambda v: 0 <= v <= 1, runtime=True, pipeline_field="min_confidence"),
    Option("prior.memory", 4, "how many of its last readings of a camera the built-in "
           "estimator pools the weather types of (1: each reading stands alone)",
           "an integer >= 1", lambda v: v >= 1, runtime=True, pipeline_field="prior_memory"),
    Option("prior.timeout_s", 30.0, "a provider call longer than this counts as hung (the "
           "fallback takes over)", "a finite number > 0", _finite_positive, runtime=True,
           pipeline_field="prior_timeout_s"),
)
BY_NAME = {option.name: option for option in OPTIONS}
DEFAULTS = {option.name: option.default for option in OPTIONS}
PIPELINE_DEFAULTS = {o.pipeline_field: o.default for o in OPTIONS if o.pipeline_field}
"""PipelineConfig's defaults, field by field."""


def problems(values: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """What is wrong with `values` (all options, or just `names`, plus the combinations)."""
    found = []
    for name in names or list(BY_NAME):
        option = BY_NAME[name]
        if not (option.typed(values[name]) and option.check(values[name])):
            found.append(f"parameter {name!r} = {values[name]!r} is not allowed: "
                         f"{option.allowed}")
    provider = values["prior.provider"]
    for field in PROVIDERS.get(provider, ()) if isinstance(provider, str) else ():
        needed = f"prior.{field}"
        if isinstance(values[needed], str) and not values[needed].strip():
            found.append(f"parameter 'prior.provider' = {provider!r} needs {needed!r} to be set")
    return found
