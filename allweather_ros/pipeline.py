"""One frame in, restored frame and degradation map out; owns the cached prior.

The prior is refreshed beside the frame path: the refresher's worker thread describes the
newest frame, `set_prior` turns the description into the network's keys/values there, and the
backend swaps them in by reference, so a frame never waits for a description.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .model import LDRNet
from .model.weights import PACKAGED, load_weights
from .prior.prior import Encoder, Prior, PriorProvider
from .prior.refresher import PriorRefresher
from .prior.uncertainty import DEFAULT_MIN_CONFIDENCE
from .runtime.backend import Backend
from .working_resolution import downscale, guided_upsample, upsample_map, working_size

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = PACKAGED / "rt.safetensors"
# Exported ONNX files and TensorRT engines; ALLWEATHER_CACHE moves them (e.g. to fast storage)
DEFAULT_CACHE = Path(os.environ.get("ALLWEATHER_CACHE", Path.home() / ".cache" / "allweather_ros"))


@dataclass
class Restoration:
    """What one frame gives: all arrays are (H, W[, 3]) at the frame's own size."""

    restored: np.ndarray  # float32 RGB in [0, 1]
    degradation_map: np.ndarray  # float32 in [0, 1]
    expert_indices: np.ndarray  # int64 (K, h, w) at the network's bottleneck
    prior: Prior
    latency_s: float


@dataclass
class PipelineConfig:
    """Everything that decides how frames are restored; the node's parameters map onto it."""

    weights: str = ""  # safetensors; empty: the shipped rt weights
    backend: str = "auto"  # NAME[:PRECISION], see runtime/select.py
    provider: str = "builtin"  # builtin | vlm | fixed | none
    vlm_model: str = ""  # local folder or cached hub id, for provider=vlm
    fixed_text: str = ""  # for provider=fixed
    prior_period_s: float = 5.0  # refresh at least this often
    change_threshold: float = 0.08  # and sooner when the scene changes this much
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # below this, coarsened toward the generic
    prior_timeout_s: float = 30.0  # a provider call longer than this counts as hung
    cache_dir: str = str(DEFAULT_CACHE)  # exported ONNX files and TensorRT engines
    threads: int = 0  # CPU threads of the backend; 0: automatic
    device: str = "cpu"  # where the prior provider runs
    # frames whose longer side exceeds this are restored at it and guided-upsampled back
    # (working_resolution.py); 0: always at full resolution
    processing_max_side: int = 1280


class Pipeline:
    """Restores frames with `backend`.

    With a `refresher` the prior follows the frames asynchronously (the node); without one,
    `refresh_now` describes a frame synchronously with `provider` (reproducible offline runs).
    Frames longer than `processing_max_side` (0: off) are restored at that working resolution.
    """

    def __init__(self, model: LDRNet, backend: Backend, encoder: Encoder,
                 refresher: PriorRefresher | None = None, initial: Prior | None = None,
                 provider: PriorProvider | None = None, processing_max_side: int = 0):
        self.model = model.eval()
        self.processing_max_side = processing_max_side
        self.backend = backend
        self.encoder = encoder
        self.refresher = refresher
        self.provider = provider
        self._swap = threading.Lock()  # one swap at a time; frames never take it
        self.prior: Prior | None = None
        first = initial or (refresher.latest if refresher else None)
        if first is None:
            raise ValueError("a pipeline needs a prior: pass `initial` or a refresher")
        self.set_prior(first)
        if refresher is not None:
            refresher.on_prior = self.set_prior

    def set_prior(self, prior: Prior) -> None:
        """Encode a new prior into keys/values and swap them in (called off the frame path)."""
        tokens = prior.tokens if prior.tokens is not None else self.encoder.encode(prior.text)
        expected = self.model.config["prior_dim"]
        if tokens.shape[-1] != expected:
            raise ValueError(f"prior tokens are {tokens.shape[-1]}-d but the restorer takes "
                             f"{expected}-d; use the text-encoder token mode with this model")
        with torch.no_grad():
            cache = self.model.encode_prior(tokens[None].float(),
                                            torch.ones(1, tokens.shape[0], dtype=torch.bool))
        with self._swap:
            self.backend.set_prior(cache)
            self.prior = prior

    def refresh_now(self, rgb: np.ndarray) -> Prior:
        """Describe `rgb` with the provider, here and now, and use that prior from now on."""
        if self.provider is None:
            raise RuntimeError("this pipeline has no synchronous provider")
        self.set_prior(self.provider.describe(rgb))
        return self.prior

    def process(self, rgb: np.ndarray) -> Restoration:
        """Restore one float32 RGB frame (H, W, 3) in [0, 1]."""
        start = time.perf_counter()
        if self.refresher is not None:
            self.refresher.submit(rgb)
        prior = self.prior
        working = working_size(*rgb.shape[:2], self.processing_max_side)
        frame = rgb if working is None else downscale(rgb, working)
        out = self.backend.infer(torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0))
        restored = out.restored[0].clamp(0.0, 1.0).permute(1, 2, 0).contiguous().numpy()
        degradation_map = out.degradation_map[0, 0].numpy()
        if working is not None:
            restored = guided_upsample(rgb, frame, restored)
            degradation_map = upsample_map(degradation_map, *rgb.shape[:2])
        return Restoration(restored, degradation_map, out.expert_indices[0].numpy(), prior,
                           time.perf_counter() - start)

    def close(self) -> None:
        if self.refresher is not None:
            self.refresher.close()


def load_model(weights: str = "") -> LDRNet:
    """The given safetensors weights, or the shipped rt weights."""
    path = Path(weights) if weights else DEFAULT_WEIGHTS
    if not weights and not path.is_file():
        raise FileNotFoundError(f"the shipped weights {path} are missing from this install")
    return load_weights(path)


def build_pipeline(config: PipelineConfig, asynchronous: bool = True) -> Pipeline:
    """Model, backend, text encoder and provider, refreshed asynchronously (the node) or, with
    `asynchronous=False`, on request through `refresh_now` (offline evaluation)."""
    from .prior.providers import NoPrior
    from .prior.registry import create_provider
    from .prior.text_encoder import TextEncoder
    from .runtime.select import create_backend

    model = load_model(config.weights)
    backend = create_backend(config.backend, model, config.cache_dir, config.threads or None)
    if backend.name != "torch":
        # torch then only serves the prior (estimator, text encoder) off the frame path: one
        # thread keeps it from taking the cores the frame backend's own thread pool needs
        torch.set_num_threads(1)
    encoder = TextEncoder()
    if model.config["prior_dim"] != encoder.dim:
        raise ValueError(f"weights {config.weights or DEFAULT_WEIGHTS} take "
                         f"{model.config['prior_dim']}-d prior tokens but the text encoder "
                         f"gives {encoder.dim}-d ones")
    provider = create_provider(config.provider, encoder, vlm_model=config.vlm_model or None,
                               fixed_text=config.fixed_text or None, device=config.device)
    if not asynchronous:
        return Pipeline(model, backend, encoder, initial=NoPrior(encoder).describe(None),
                        provider=provider, processing_max_side=config.processing_max_side)
    fallback = None  # a VLM can fail (memory, hangs): the built-in estimator stands in
    if config.provider == "vlm":
        fallback = create_provider("builtin", encoder, device=config.device)
    refresher = PriorRefresher(provider, fallback=fallback, encoder=encoder,
                               period=config.prior_period_s,
                               change_threshold=config.change_threshold,
                               min_confidence=config.min_confidence,
                               timeout=config.prior_timeout_s)
    return Pipeline(model, backend, encoder, refresher,
                    processing_max_side=config.processing_max_side)
