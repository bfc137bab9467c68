"""One frame in, restored frame and degradation map out; owns each camera's cached prior.

The prior is refreshed beside the frame path: a camera's refresher thread describes its newest
frame, `set_prior` turns the description into the network's keys/values there, and the next
frame of that camera hands them to the backend by reference, so a frame never waits for a
description. Cameras share the backend and the provider (the estimator or VLM is loaded once);
each has its own refresher (newest frame, schedule, failures) and prior, so a lens drop on the
rear camera does not change the front camera's restoration.

With the ONNX Runtime backend the prior's networks run as ONNX graphs too (runtime/onnx_prior.py)
and frames, tokens and keys/values are numpy arrays: that process never imports torch. Every
other backend keeps the torch models.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .lights import keep_lights
from .markings import keep_markings, marking_mask
from .network_io import PACKAGED, PriorCache, checked_frame, file_sha256, without_frame_gate
from .options import PIPELINE_DEFAULTS as DEFAULTS
from .prior.frame_gate_opening import frame_gate_opening
from .prior.prior import Encoder, Prior, PriorProvider
from .prior.providers import NoPrior
from .prior.refresher import PriorRefresher
from .prior.registry import PROVIDERS
from .prior.uncertainty import coarsen
from .prior.weather_memory import WeatherMemory
from .runtime.backend import Backend
from .runtime.registry import auto_without_cuda, cuda_possible, parse_backend
from .transients import TransientSuppressor
from .working_resolution import downscale, guided_upsample, upsample_map, working_size

if TYPE_CHECKING:
    from .model import LDRNet

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = PACKAGED / "rt.safetensors"
ROAD_MEMORY = 30  # frames (a second at 30 Hz) a stream counts as a road's after lane markings


class PriorEncoding(Protocol):
    """The restorer's prior side: its configuration and one prior's tokens (L, C) -> the
    PriorCache every frame reuses (runtime/torch_backend.TorchPriorEncoding or, without torch,
    runtime/onnx_prior.OnnxPriorEncoding)."""

    config: dict

    def __call__(self, tokens) -> PriorCache: ...


@dataclass
class Restoration:
    """What one frame gives: all arrays are (H, W[, 3]) at the frame's own size."""

    restored: np.ndarray  # float32 RGB in [0, 1]
    degradation_map: np.ndarray  # float32 in [0, 1]
    expert_indices: np.ndarray  # int64 (K, h, w) at the network's bottleneck
    prior: Prior
    latency_s: float
    transient_share: float = 0.0  # share of pixels transients.py took back (0: not applied)
    transient_state: str = "off"  # what transients.py did (TransientSuppressor.last_state)
    lights_share: float = 0.0  # share of pixels lights.py put back (small lights dimmed)
    markings_share: float = 0.0  # share of pixels markings.py gave contrast back (road markings)
    working_side: int = 0  # the longer side of the frame the network restored


@dataclass
class _Camera:
    """One camera's state: its prior in force with its keys/values (swapped together, by
    reference), the refresher that keeps it fresh (None in a synchronous pipeline), and the
    past frames its transients are judged against."""

    state: tuple[Prior, PriorCache]
    refresher: PriorRefresher | None = None
    memory: WeatherMemory = dataclasses.field(default_factory=WeatherMemory)  # refresh_now's
    transients: TransientSuppressor = dataclasses.field(default_factory=TransientSuppressor)
    road: int = 0  # frames of its stream still counted on a road (ROAD_MEMORY after markings)


@dataclass
class PipelineConfig:
    """Everything that decides how frames are restored; defaults, rules and the node's parameter
    names are in options.OPTIONS (the field each option sets is its `pipeline_field`)."""

    weights: str = DEFAULTS["weights"]  # safetensors; empty: the shipped rt weights
    frame_gate: bool = DEFAULTS["frame_gate"]  # false: those weights without their frame gate
    backend: str = DEFAULTS["backend"]  # NAME[:PRECISION], see runtime/registry.py
    provider: str = DEFAULTS["provider"]  # see prior/registry.py
    vlm_model: str = DEFAULTS["vlm_model"]  # local folder or cached hub id, for provider=vlm
    vlm_rain_check: bool = DEFAULTS["vlm_rain_check"]  # prior/severity_check.py
    fixed_text: str = DEFAULTS["fixed_text"]  # for provider=fixed
    estimator_weights: str = DEFAULTS["estimator_weights"]  # empty: the shipped estimator
    prior_period_s: float = DEFAULTS["prior_period_s"]  # refresh at least this often
    change_threshold: float = DEFAULTS["change_threshold"]  # and sooner on a scene change
    min_confidence: float = DEFAULTS["min_confidence"]  # below: coarsened toward the generic
    prior_memory: int = DEFAULTS["prior_memory"]  # the built-in estimator's readings pooled
    prior_timeout_s: float = DEFAULTS["prior_timeout_s"]  # a longer call counts as hung
    cache_dir: str = DEFAULTS["cache_dir"]  # exported ONNX files and TensorRT engines
    threads: int = DEFAULTS["threads"]  # CPU threads of the backend; 0: automatic
    device: str = DEFAULTS["device"]  # where the prior provider runs
    # frames whose longer side exceeds this are restored at it and guided-upsampled back
    # (working_resolution.py); 0: always at full resolution
    processing_max_side: int = DEFAULTS["processing_max_side"]
    # a frame whose prior names snow and no rain is restored at this side where it is
    # smaller; 0: off
    processing_max_side_snow: int = DEFAULTS["processing_max_side_snow"]
    transient_frames: int = DEFAULTS["transient_frames"]  # a stream's past frames; 0: off


_REFRESHER_FIELDS = {"prior_period_s": "period", "change_threshold": "change_threshold",
                     "min_confidence": "min_confidence", "prior_timeout_s": "timeout",
                     "prior_memory": "memory"}
"""PipelineConfig field -> the refresher attribute it sets."""


def prior_providers(config: PipelineConfig, encoder: Encoder | None, load_estimator_net=None
                    ) -> tuple[PriorProvider, PriorProvider | None]:
    """(primary, fallback) for `config`: a VLM can fail (memory, hangs), so the built-in
    estimator stands in for it (and checks its rain word); the others need no fallback.
    `load_estimator_net` (weights path -> the estimator's network; None: torch's) is handed to
    the built-in estimator. Raises if either cannot be built."""
    from .prior.registry import create_provider

    fallback = None
    if config.provider == "vlm":
        fallback = create_provider("builtin", encoder, device=config.device,
                                   load_estimator_net=load_estimator_net,
                                   estimator_weights=config.estimator_weights)
    primary = create_provider(config.provider, encoder, vlm_model=config.vlm_model or None,
                              fixed_text=config.fixed_text or None, device=config.device,
                              load_estimator_net=load_estimator_net,
                              estimator_weights=config.estimator_weights,
                              vlm_rain_check=config.vlm_rain_check, estimator=fallback)
    return primary, fallback


def _provider_changed(old: PipelineConfig, new: PipelineConfig) -> bool:
    """Whether `new` needs another provider: a change of an option the active provider does not
    use (fixed_text while the VLM runs) needs none."""
    if (old.provider, old.device, old.estimator_weights) != (new.provider, new.device,
                                                              new.estimator_weights):
        return True
    return any(getattr(old, field) != getattr(new, field) for field in PROVIDERS[new.provider])


class Pipeline:
    """Restores frames with `backend`; the only way in for its users (the node, the bag
    evaluation): `process`, `reconfigure`, `describe`.

    With a `refresher` the prior follows the frames asynchronously (the node); without one,
    `refresh_now` describes a frame synchronously with `provider` (reproducible offline runs).
    Frames longer than `processing_max_side` (0: off) are restored at that working resolution;
    with `processing_max_side_snow`, the network sees those whose prior names snow and no rain
    smaller still, unless they are a road's (`_on_road`), and the stages after it work at the
    working resolution.
    """

    def __init__(self, prior_encoding: PriorEncoding, backend: Backend, encoder: Encoder,
                 refresher: PriorRefresher | None = None, initial: Prior | None = None,
                 provider: PriorProvider | None = None, config: PipelineConfig | None = None,
                 load_estimator_net=None):
        """`refresher` serves the default camera ("") and is the template of every other
        camera's; without one, `refresh_now` describes frames with `provider`.
        `load_estimator_net` is how `reconfigure` loads the built-in estimator (None: torch)."""
        self.prior_encoding = prior_encoding
        self.load_estimator_net = load_estimator_net
        self.backend = backend
        self.encoder = encoder
        self.provider = provider
        self.config = config or PipelineConfig()
        self.weights = weights_in_use(self.config)  # the files loaded, hashed once, not per report
        self._cameras: dict[str, _Camera] = {}
        self._infer = threading.Lock()  # backend prior and inference of one frame together
        self._making = threading.Lock()  # one camera made at a time
        self._loaded: PriorCache | None = None  # the cache the backend holds now
        first = initial or (refresher.latest if refresher else None)
        if first is None:
            raise ValueError("a pipeline needs a prior: pass `initial` or a refresher")
        self._cameras[""] = _Camera(self._encoded(first), refresher)
        if refresher is not None:
            refresher.on_prior = self._setter("")

    @property
    def restorer_config(self) -> dict:
        """The restorer network's configuration (its constructor arguments)."""
        return self.prior_encoding.config

    @property
    def refresher(self) -> PriorRefresher | None:
        """The default camera's refresher."""
        return self._cameras[""].refresher

    @property
    def prior(self) -> Prior:
        """The default camera's prior in force."""
        return self.prior_of("")

    def prior_of(self, camera: str) -> Prior:
        """The prior in force for `camera` (the generic one until its first refresh)."""
        return self._camera(camera).state[0]

    def _encoded(self, prior: Prior) -> tuple[Prior, PriorCache]:
        tokens = prior.tokens if prior.tokens is not None else self.encoder.encode(prior.text)
        expected = self.restorer_config["prior_dim"]
        if tokens.shape[-1] != expected:
            raise ValueError(f"prior tokens are {tokens.shape[-1]}-d but the restorer takes "
                             f"{expected}-d; use the text-encoder token mode with this model")
        opening = np.array([frame_gate_opening(prior)], np.float32)
        return prior, self.prior_encoding(tokens)._replace(gate_opening=opening)

    def _setter(self, camera: str):
        return lambda prior: self.set_prior(prior, camera)

    def _camera(self, camera: str) -> _Camera:
        """The camera's state, made on first use: the generic prior, an empty past and, in an
        asynchronous pipeline, a refresher like the default camera's (same providers)."""
        entry = self._cameras.get(camera)
        if entry is not None:
            return entry
        with self._making:
            if camera not in self._cameras:
                template = self._cameras[""].refresher
                refresher = None if template is None else PriorRefresher(
                    template.primary, fallback=template.fallback, encoder=self.encoder,
                    period=template.period, change_threshold=template.change_threshold,
                    check_interval=template.check_interval,
                    min_confidence=template.min_confidence, timeout=template.timeout,
                    backoff=template.backoff, memory=template.memory,
                    on_prior=self._setter(camera))
                first = self.prior if template is None else template.generic
                self._cameras[camera] = _Camera(self._encoded(first), refresher)
            return self._cameras[camera]

    def set_prior(self, prior: Prior, camera: str = "") -> None:
        """Encode a new prior into keys/values (off the frame path) and make it the camera's;
        its next frame hands it to the backend."""
        self._camera(camera).state = self._encoded(prior)

    @functools.cached_property
    def _generic(self) -> Prior:
        """The generic prior an unsure synchronous estimate is coarsened towards."""
        return NoPrior(self.encoder).describe(None)

    def refresh_now(self, rgb: np.ndarray, camera: str = "", remember: bool = False) -> Prior:
        """Describe `rgb` with the provider, here and now, and use that prior from now on,
        coarsened (prior/uncertainty.py) as a refresher would have published it. With
        `remember` (frames of one stream: a video, a bag) a remembering provider pools it with
        the camera's last readings, as a refresher does; without, it stands alone."""
        if self.provider is None:
            raise RuntimeError("this pipeline has no synchronous provider")
        frame = checked_frame(rgb)
        if self.provider.remembers and remember:
            memory = self._camera(camera).memory
            memory.readings = self.config.prior_memory
            estimate = self.provider.describe(frame, memory=memory)
        else:
            estimate = self.provider.describe(frame)
        self.set_prior(coarsen(estimate, self._generic, self.config.min_confidence,
                               self.encoder), camera)
        return self.prior_of(camera)

    def process(self, rgb: np.ndarray, camera: str = "", stream: bool = False) -> Restoration:
        """Restore one float RGB frame (H, W, 3) in [0, 1] of `camera` (float32 from here on)
        with its prior. With `stream` (the next frame of a camera, a video, a bag) the rain
        streaks and snowflakes that the camera's last `transient_frames` frames show were not
        there are taken out too (transients.py); without, the frame stands alone."""
        start = time.perf_counter()
        rgb = np.asarray(checked_frame(rgb), np.float32)  # the stages after the network: float32
        entry = self._camera(camera)
        if entry.refresher is not None:
            entry.refresher.submit(rgb)
        prior, cache = entry.state
        working = working_size(*rgb.shape[:2], self.config.processing_max_side)
        frame = rgb if working is None else downscale(rgb, working)
        markings = marking_mask(frame)
        on_road = self._on_road(entry, bool(markings.any()), stream)
        # snow is restored smaller still (off a road: _snow_side) and carried back to `frame`'s
        # size for the stages after the network, whose sizes in pixels were chosen there
        snow = working_size(*frame.shape[:2], 0 if on_road else self._snow_side(prior))
        seen = frame if snow is None else downscale(frame, snow)
        image = np.ascontiguousarray(seen.transpose(2, 0, 1)[None], dtype=np.float32)
        with self._infer:
            if self._loaded is not cache:
                self.backend.set_prior(cache)
                self._loaded = cache
            out = self.backend.infer(image)
        restored = np.ascontiguousarray(
            np.clip(np.asarray(out.restored[0]), 0.0, 1.0).transpose(1, 2, 0))
        if snow is not None:
            restored = guided_upsample(frame, seen, restored)
        restored, lights_share = keep_lights(frame, restored)
        restored, markings_share = keep_markings(frame, restored, markings)
        transients = entry.transients
        transients.frames = self.config.transient_frames
        if stream:
            restored = transients(restored)
        else:
            transients.reset()
        degradation_map = np.asarray(out.degradation_map[0, 0])
        if degradation_map.shape != rgb.shape[:2]:
            degradation_map = upsample_map(degradation_map, *rgb.shape[:2])
        if working is not None:
            restored = guided_upsample(rgb, frame, restored)
        return Restoration(restored, degradation_map, np.asarray(out.expert_indices[0]), prior,
                           time.perf_counter() - start, transients.last_share,
                           transients.last_state, lights_share, markings_share,
                           max(seen.shape[:2]))

    @staticmethod
    def _on_road(entry: _Camera, markings: bool, stream: bool) -> bool:
        """Whether the frame is a road's: it shows lane markings or, on a stream, one of the
        camera's last ROAD_MEMORY frames did (so a dash cam whose markings snow hides for a
        frame keeps its working side); the camera's count is kept here. A road keeps the
        working side for snow: at 320 a lane marking is half as wide and the network takes
        more of it for flakes (options.py)."""
        if not stream:  # a photo stands alone
            entry.road = 0
            return markings
        entry.road = ROAD_MEMORY if markings else max(entry.road - 1, 0)
        return entry.road > 0

    def _snow_side(self, prior: Prior) -> int:
        """processing_max_side_snow where the prior names snow and no rain and it is smaller
        than processing_max_side (options.py says why), else 0: no smaller side."""
        side, snow = self.config.processing_max_side, self.config.processing_max_side_snow
        if 0 < snow < side and prior.names("snow") and not prior.names("rain"):
            return snow
        return 0

    def _refreshers(self) -> list[PriorRefresher]:
        return [c.refresher for c in list(self._cameras.values()) if c.refresher is not None]

    def reconfigure(self, **changes) -> None:
        """Apply run-time changes to PipelineConfig fields: the prior provider (built here, with
        the same fallback as at start-up, only if the active one is affected, and shared by
        every camera), the refreshers' periods and thresholds, and the working resolution
        (read by the next frame; a ValueError where the backend cannot take it, e.g. a
        TensorRT engine built for the old one). All or nothing: if the new provider cannot be
        built the error is raised and nothing changes."""
        config = dataclasses.replace(self.config, **changes)  # TypeError on an unknown field
        weights = weights_in_use(config)
        if config.processing_max_side != self.config.processing_max_side:
            problem = self.backend.working_side_problem(config.processing_max_side)
            if problem:
                raise ValueError(problem)
        if _provider_changed(self.config, config):
            primary, fallback = prior_providers(config, self.encoder, self.load_estimator_net)
            for refresher in self._refreshers():
                refresher.use(primary, fallback)
            if self.refresher is None:
                self.provider = primary
                for entry in list(self._cameras.values()):
                    entry.memory.clear()
        for refresher in self._refreshers():
            for field, attribute in _REFRESHER_FIELDS.items():
                setattr(refresher, attribute, getattr(config, field))
        self.config, self.weights = config, weights

    def describe(self, camera: str = "") -> dict:
        """What runs, for logs and diagnostics: the backend's facts, the weights files
        (`weights_in_use`) and the camera's refresher health (provider in force, primary,
        fallback, failures)."""
        refresher = self._camera(camera).refresher
        return {"backend": self.backend.describe(), "weights": self.weights,
                "refresher": refresher.health() if refresher else {}}

    def close(self) -> None:
        for refresher in self._refreshers():
            refresher.close()


def load_model(weights: str = "") -> LDRNet:
    """The given safetensors weights, or the shipped rt weights."""
    from .model.weights import load_weights

    return load_weights(weights_path(weights))


def weights_path(weights: str = "") -> Path:
    """The given weights file (~ expanded, as the option's rule reads it), or the shipped rt
    weights (which must be there)."""
    path = Path(weights).expanduser() if weights else DEFAULT_WEIGHTS
    if not weights and not path.is_file():
        raise FileNotFoundError(f"the shipped weights {path} are missing from this install")
    return path


def restorer_weights(config: PipelineConfig) -> Path:
    """The weights file every backend restores with: `config.weights` (or the shipped ones),
    without their frame gate where `config.frame_gate` is false (a copy in the cache folder)."""
    path = weights_path(config.weights)
    return path if config.frame_gate else without_frame_gate(path, config.cache_dir)


def estimator_weights(config: PipelineConfig) -> Path | None:
    """The built-in estimator's weights file where `config`'s provider reads frames with it
    (itself, or the VLM's fallback and rain check), else None."""
    if config.provider not in ("builtin", "vlm"):
        return None
    from .prior.builtin import estimator_weights_path

    return estimator_weights_path(config.estimator_weights)


def weights_in_use(config: PipelineConfig) -> dict[str, str]:
    """The restorer's weights file and, where a provider reads frames with it, the built-in
    estimator's, each with the first 16 hex digits of its sha256: the model card names the
    shipped files by theirs, so a fleet's logs say which weights restored a frame."""
    files = {"restorer_weights": restorer_weights(config),
             "estimator_weights": estimator_weights(config)}
    return {role: f"{path} (sha256 {file_sha256(path)[:16]})" for role, path in files.items()
            if path is not None}


def resolved_backend(config: PipelineConfig) -> tuple[str, str]:
    """(name, precision) of `config`'s backend, with `auto` resolved where that needs no torch:
    on a machine without a CUDA device it can only pick a CPU backend (registry.AUTO_ORDER).
    Where there may be CUDA, `auto` stays for runtime/select.py to resolve with torch."""
    name, precision = parse_backend(config.backend)
    if name == "auto" and not cuda_possible():
        name = auto_without_cuda(precision)
    return name, precision


def torch_free(config: PipelineConfig) -> bool:
    """Whether `config`'s pipeline runs without torch: its backend is ONNX Runtime on the CPU
    (named, or what `auto` picks without CUDA), so the prior's networks run as ONNX graphs too
    (a VLM provider still brings torch along)."""
    return resolved_backend(config)[0] == "onnxruntime"


def _onnx_parts(config: PipelineConfig):
    """Backend, prior encoding, text encoder and estimator loader from the ONNX graphs in the
    cache folder (exported by a child process when missing): nothing here imports torch."""
    from functools import partial

    from .prior.text_encoder import text_encoder_files
    from .runtime.graphs import ensure_graphs
    from .runtime.onnx_prior import OnnxEstimatorNet, OnnxPriorEncoding, OnnxTextEncoder
    from .runtime.onnxruntime_backend import OnnxRuntimeBackend

    name, precision = resolved_backend(config)
    weights = restorer_weights(config)
    graphs = ensure_graphs(config.cache_dir, weights, precision == "int8",
                           estimator_weights(config), text_encoder_files())
    backend = OnnxRuntimeBackend(graphs["ldr"], threads=config.threads or None,
                                 precision=precision)
    if parse_backend(config.backend)[0] == "auto":
        log.info("backend auto chose %s:%s (no CUDA device here)", name, precision)
    return (backend, OnnxPriorEncoding(graphs["ldr-prior"], weights),
            OnnxTextEncoder(config.cache_dir), partial(OnnxEstimatorNet,
                                                       cache_dir=config.cache_dir))


def _torch_parts(config: PipelineConfig):
    """Backend, prior encoding and text encoder run by torch (every backend but ONNX
    Runtime)."""
    import torch

    from .prior.text_encoder import TextEncoder
    from .runtime.select import create_backend
    from .runtime.torch_backend import TorchPriorEncoding

    model = load_model(str(restorer_weights(config)))
    backend = create_backend(config.backend, model, config.cache_dir, config.threads or None,
                             config.processing_max_side)
    if backend.name != "torch":
        # torch then only serves the prior (estimator, text encoder) off the frame path: one
        # thread keeps it from taking the cores the frame backend's own thread pool needs
        torch.set_num_threads(1)
    return backend, TorchPriorEncoding(model), TextEncoder(), None


def build_pipeline(config: PipelineConfig, asynchronous: bool = True) -> Pipeline:
    """Backend, prior encoding, text encoder and provider, refreshed asynchronously (the node)
    or, with `asynchronous=False`, on request through `refresh_now` (offline evaluation)."""

    parts = _onnx_parts(config) if torch_free(config) else _torch_parts(config)
    backend, prior_encoding, encoder, load_estimator_net = parts
    if prior_encoding.config["prior_dim"] != encoder.dim:
        raise ValueError(f"weights {config.weights or DEFAULT_WEIGHTS} take "
                         f"{prior_encoding.config['prior_dim']}-d prior tokens but the text "
                         f"encoder gives {encoder.dim}-d ones")
    if not asynchronous:
        provider = prior_providers(config, encoder, load_estimator_net)[0]
        return Pipeline(prior_encoding, backend, encoder,
                        initial=NoPrior(encoder).describe(None), provider=provider,
                        config=config, load_estimator_net=load_estimator_net)
    provider, fallback = prior_providers(config, encoder, load_estimator_net)
    refresher = PriorRefresher(provider, fallback=fallback, encoder=encoder,
                               period=config.prior_period_s,
                               change_threshold=config.change_threshold,
                               min_confidence=config.min_confidence,
                               timeout=config.prior_timeout_s, memory=config.prior_memory)
    return Pipeline(prior_encoding, backend, encoder, refresher, config=config,
                    load_estimator_net=load_estimator_net)
