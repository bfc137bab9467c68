"""TensorRT 10 backend: the exported ONNX built into an engine, cached, run on torch CUDA buffers.

Build: `trt.Builder` + `OnnxParser`, one optimization profile spanning the configured camera
sizes and prior lengths, fp16 flag, progress logged through an
`IProgressMonitor`, the plan stored in the EngineCache under its full key. Run: the plan is
deserialized with `trt.Runtime` (any failure -> rebuild), inputs and outputs are torch CUDA
tensors bound with `set_input_shape`/`set_tensor_address`, and `execute_async_v3` runs on a
private stream. `tensorrt` is imported only when a backend is made, so everything else in the
package runs where TensorRT is not installed.

fp16 and normalisation: TensorRT computes an `INormalizationLayer` in fp32 when asked
(`compute_precision`), which fp16 builds do here. Our LayerNorm2d, though, is exported as
elementwise and reduce ops, not as one ONNX LayerNormalization, so there is no such layer to
pin; it is made fp16-safe by construction instead (it divides by the per-pixel max first, so
its squares stay below 1). tools/gpu_check.py checks the fp16 engine against fp32.

No INT8: it would need calibration frames wired in from a bag or folder and a cached
calibration table, and nothing passes them yet, so no list offers it (runtime/registry.py).
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..model import LDROutput, PriorCache
from ..network_io import GATE_OPENING, file_sha256, gate_opening_feed
from ..options import DEFAULT_CACHE
from .backend import Backend, BackendUnavailable
from .engine_cache import PRECISIONS, EngineCache, EngineKey, ShapeProfile
from .export import INPUTS, OUTPUTS

log = logging.getLogger(__name__)

DEFAULT_SIZES = ((640, 480), (1280, 720), (1920, 1080))
WORKSPACE_BYTES = 1 << 30
PROGRESS_EVERY_S = 10.0

# Which profile entry fills each dynamic axis of each network input (see export.py).
_DYNAMIC_AXES = {"image": {2: "height", 3: "width"}, "prior_kv": {2: "prior_length"},
                 "prior_bias": {1: "prior_length"}}


def import_tensorrt():
    """The tensorrt module (10 or later), or BackendUnavailable saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(
            f"the tensorrt Python package is not importable ({exc}); on a Jetson it comes with "
            "JetPack (python3-libnvinfer, seen by a --system-site-packages venv), elsewhere "
            "from NVIDIA's pip index") from exc
    if int(trt.__version__.split(".")[0]) < 10:
        raise BackendUnavailable(f"TensorRT {trt.__version__} found; this backend needs 10+")
    return trt


def cuda_device(index: int = 0) -> torch.device:
    """The CUDA device whose torch tensors serve as TensorRT's buffers."""
    if not torch.cuda.is_available():
        raise BackendUnavailable("torch sees no CUDA device, and TensorRT runs on one")
    return torch.device("cuda", index)


def engine_key(trt_version: str, onnx_path: str | Path, precision: str, profile: ShapeProfile,
               device: torch.device) -> EngineKey:
    props = torch.cuda.get_device_properties(device)
    return EngineKey(props.name, f"{props.major}.{props.minor}", props.multi_processor_count,
                     trt_version, file_sha256(onnx_path), precision, profile)


def engine_profile(max_side: int, sizes=DEFAULT_SIZES) -> ShapeProfile:
    """The frames a pipeline restoring at `max_side` (processing_max_side) hands the network,
    which the node's engine and `allweather build-engine`'s are built for alike: any shrunk to
    that side; 0 (full resolution): the camera `sizes`, (width, height), the first optimised
    for."""
    return (ShapeProfile.for_working_side(max_side) if max_side > 0
            else ShapeProfile.from_sizes(sizes))


def profile_shapes(profile: ShapeProfile, input_dims: dict[str, Sequence[int]]
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape of each network input: its dynamic (-1) axes filled from `profile`.

    A dynamic batch axis gets 1 (one camera frame per call); any other dynamic axis the
    profile does not cover is an export the backend does not understand, so it is an error.
    """
    shapes = {}
    for name, dims in input_dims.items():
        per_axis = []
        for axis, dim in enumerate(dims):
            field = _DYNAMIC_AXES.get(name, {}).get(axis)
            if dim >= 0:
                per_axis.append((dim, dim, dim))
            elif field is not None:
                per_axis.append(getattr(profile, field))
            elif axis == 0:
                per_axis.append((1, 1, 1))
            else:
                raise ValueError(f"input {name!r} axis {axis} is dynamic but no profile entry "
                                 f"covers it (dims {tuple(dims)})")
        lo, opt, hi = (tuple(v) for v in zip(*per_axis, strict=True))
        shapes[name] = (lo, opt, hi)
    return shapes


@functools.cache
def _trt_types(trt):
    """TensorRT callback classes, defined only once tensorrt is imported."""
    levels = {trt.ILogger.INTERNAL_ERROR: logging.CRITICAL, trt.ILogger.ERROR: logging.ERROR,
              trt.ILogger.WARNING: logging.WARNING, trt.ILogger.INFO: logging.DEBUG,
              trt.ILogger.VERBOSE: logging.DEBUG}

    class Logger(trt.ILogger):
        """TensorRT's messages into Python logging (its INFO is chatty: debug here)."""

        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            log.log(levels.get(severity, logging.INFO), "TensorRT: %s", msg)

    class Progress(trt.IProgressMonitor):
        """Logs each top-level build phase and, every PROGRESS_EVERY_S, the step it reached.

        A Jetson build takes minutes; without this the node looks hung. TensorRT calls it
        from several threads, hence the lock.
        """

        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._phases: dict[str, tuple[str | None, int, float]] = {}
            self._last_report = 0.0

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                self._phases[phase_name] = (parent_phase, num_steps, time.monotonic())
            if parent_phase is None:
                log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name, step):
            now = time.monotonic()
            with self._lock:
                due = now - self._last_report >= PROGRESS_EVERY_S
                if due:
                    self._last_report = now
                _, steps, _ = self._phases.get(phase_name, (None, 0, now))
            if due:
                log.info("TensorRT build: %s step %d/%d", phase_name, step + 1, steps)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self._lock:
                parent, _, start = self._phases.pop(phase_name, (None, 0, time.monotonic()))
            if parent is None:
                log.info("TensorRT build: %s done in %.1f s", phase_name,
                         time.monotonic() - start)

    dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
              trt.int64: torch.int64, trt.int8: torch.int8, trt.bool: torch.bool}
    if hasattr(trt, "bfloat16"):
        dtypes[trt.bfloat16] = torch.bfloat16
    return Logger, Progress, dtypes


def _pin_normalization_fp32(trt, network) -> int:
    """Compute every INormalizationLayer in fp32 where this TensorRT exposes the setting."""
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type != trt.LayerType.NORMALIZATION:
            continue
        layer.__class__ = trt.INormalizationLayer  # the Python API hands out the base class
        if hasattr(layer, "compute_precision"):
            layer.compute_precision = trt.float32
            pinned += 1
    return pinned


def build_engine(onnx_path: str | Path, precision: str, profile: ShapeProfile,
                 workspace_bytes: int = WORKSPACE_BYTES) -> bytes:
    """Parse the ONNX and build a serialized engine (the plan) for `profile` and `precision`."""
    trt = import_tensorrt()
    logger_cls, progress_cls, _ = _trt_types(trt)
    logger = logger_cls()
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10 networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    progress = progress_cls()  # referenced until the build returns, as TensorRT requires
    config.progress_monitor = progress
    dims = {network.get_input(i).name: tuple(network.get_input(i).shape)
            for i in range(network.num_inputs)}
    shapes = profile_shapes(profile, dims)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 is the reference build: no TF32 matmuls
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise BackendUnavailable(f"TensorRT {trt.__version__} builds strongly typed networks "
                                     "only; reduced precision would need an fp16 ONNX export")
        config.set_flag(trt.BuilderFlag.FP16)
        log.info("fp16 build: %d normalization layers computed in fp32",
                 _pin_normalization_fp32(trt, network))
    log.info("building a %s TensorRT %s engine from %s for %s", precision, trt.__version__,
             Path(onnx_path).name, profile.slug())
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build {Path(onnx_path).name} ({precision}); "
                           "its log above says why")
    return bytes(plan)


class TensorRTBackend(Backend):
    """Runs the per-frame graph as a cached TensorRT engine.

    The first run on a device builds the engine (seconds on a desktop GPU, minutes on a
    Jetson: build it ahead of time with `allweather build-engine`, as docs/jetson.md
    shows); later runs load it from `engine_dir`.
    """

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, engine_dir: str | Path = DEFAULT_CACHE,
                 precision: str = "fp16", profile: ShapeProfile | None = None, device: int = 0,
                 workspace_bytes: int = WORKSPACE_BYTES):
        trt = import_tensorrt()
        self.device = cuda_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"TensorRT precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        self.profile = profile or engine_profile(0)
        self._stream = torch.cuda.Stream(self.device)  # also creates the CUDA context
        self.key = engine_key(trt.__version__, onnx_path, precision, self.profile, self.device)
        self.cache = EngineCache(engine_dir)
        logger_cls, _, self._dtypes = _trt_types(trt)
        self._logger = logger_cls()
        self._runtime = trt.Runtime(self._logger)  # must outlive the engine

        def build() -> bytes:
            return build_engine(onnx_path, precision, self.profile, workspace_bytes)

        with torch.cuda.device(self.device):
            self.engine = self.cache.get_or_build(self.key, build,
                                                  self._runtime.deserialize_cuda_engine)
            self.context = self.engine.create_execution_context()
        names = (self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors))
        self._inputs = tuple(name for name in names
                             if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT)
        self.trt_version = trt.__version__
        self._lock = threading.Lock()
        self._prior: dict[str, torch.Tensor] | None = None
        self._outputs: dict[str, torch.Tensor] = {}
        self._outputs_for: tuple | None = None

    def set_prior(self, cache: PriorCache) -> None:
        """Upload keys/values, bias (and the frame gate's opening, where the engine takes it)
        once; every frame until the next refresh binds them."""
        length = cache.kv.shape[2]
        lo, _, hi = self.profile.prior_length
        if not lo <= length <= hi:
            raise ValueError(f"prior of {length} tokens is outside this engine's {lo}..{hi}")
        prior = {INPUTS[1]: cache.kv.detach(), INPUTS[2]: cache.bias.detach(),
                 GATE_OPENING: torch.from_numpy(gate_opening_feed(cache))}
        prior = {name: tensor.to(self.device, torch.float32).contiguous()
                 for name, tensor in prior.items() if name in self._inputs}
        torch.cuda.current_stream(self.device).synchronize()  # uploaded before any frame reads
        with self._lock:
            self._prior = prior

    def _output_buffers(self, shape_key: tuple) -> dict[str, torch.Tensor]:
        """Output tensors for the current input shapes, reallocated only when those change."""
        if self._outputs_for != shape_key:
            self._outputs = {
                name: torch.empty(tuple(self.context.get_tensor_shape(name)),
                                  dtype=self._dtypes[self.engine.get_tensor_dtype(name)],
                                  device=self.device)
                for name in OUTPUTS}
            self._outputs_for = shape_key
        return self._outputs

    def infer(self, image) -> LDROutput:
        if self._prior is None:
            raise RuntimeError("set_prior must be called before infer")
        image = torch.as_tensor(image)
        height, width = image.shape[-2:]
        if not self.profile.accepts(height, width):
            raise ValueError(f"a {width}x{height} frame is outside this engine's profile "
                             f"{self.profile.slug()}; restart with the processing_max_side "
                             "it was built for, or rebuild it for this size")
        with self._lock, torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            inputs = {INPUTS[0]: image.to(self.device, torch.float32).contiguous(),
                      **self._prior}
            for name, tensor in inputs.items():
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            outputs = self._output_buffers((height, width, inputs[INPUTS[1]].shape[2]))
            for name, tensor in outputs.items():
                self.context.set_tensor_address(name, tensor.data_ptr())
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed; its log says why")
            host = [outputs[name].cpu() for name in OUTPUTS]  # waits for the stream
        return LDROutput(*(t if t.is_floating_point() else t.long() for t in host))

    def describe(self) -> dict:
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                "tensorrt": self.trt_version, "gpu": self.key.gpu_name,
                "engine": self.cache.engine_path(self.key).name, "profile": self.profile.slug()}
