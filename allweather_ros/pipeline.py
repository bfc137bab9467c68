"""One frame in, restored frame and degradation map out; owns the cached prior.

The prior is refreshed beside the frame path: the refresher's worker thread describes the
newest frame, `set_prior` turns the description into the network's keys/values there, and the
backend swaps them in by reference, so a frame never waits for a description.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .model import LDRNet
from .model.weights import PACKAGED, load_weights
from .options import PIPELINE_DEFAULTS as DEFAULTS
from .prior.prior import Encoder, Prior, PriorProvider
from .prior.refresher import PriorRefresher
from .prior.registry import PROVIDERS
from .runtime.backend import Backend

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = PACKAGED / "rt.safetensors"


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
    """Everything that decides how frames are restored; defaults, rules and the node's parameter
    names are in options.OPTIONS (the field each option sets is its `pipeline_field`)."""

    weights: str = DEFAULTS["weights"]  # safetensors; empty: the shipped rt weights
    backend: str = DEFAULTS["backend"]  # NAME[:PRECISION], see runtime/registry.py
    provider: str = DEFAULTS["provider"]  # see prior/registry.py
    vlm_model: str = DEFAULTS["vlm_model"]  # local folder or cached hub id, for provider=vlm
    fixed_text: str = DEFAULTS["fixed_text"]  # for provider=fixed
    prior_period_s: float = DEFAULTS["prior_period_s"]  # refresh at least this often
    change_threshold: float = DEFAULTS["change_threshold"]  # and sooner on a scene change
    min_confidence: float = DEFAULTS["min_confidence"]  # below: coarsened toward the generic
    prior_timeout_s: float = DEFAULTS["prior_timeout_s"]  # a longer call counts as hung
    cache_dir: str = DEFAULTS["cache_dir"]  # exported ONNX files and TensorRT engines
    threads: int = DEFAULTS["threads"]  # CPU threads of the backend; 0: automatic
    device: str = DEFAULTS["device"]  # where the prior provider runs


_REFRESHER_FIELDS = {"prior_period_s": "period", "change_threshold": "change_threshold",
                     "min_confidence": "min_confidence", "prior_timeout_s": "timeout"}
"""PipelineConfig field -> the refresher attribute it sets."""


def prior_providers(config: PipelineConfig, encoder: Encoder | None
                    ) -> tuple[PriorProvider, PriorProvider | None]:
    """(primary, fallback) for `config`: a VLM can fail (memory, hangs), so the built-in
    estimator stands in for it; the others need no fallback. Raises if either cannot be built."""
    from .prior.registry import create_provider

    primary = create_provider(config.provider, encoder, vlm_model=config.vlm_model or None,
                              fixed_text=config.fixed_text or None, device=config.device)
    fallback = None
    if config.provider == "vlm":
        fallback = create_provider("builtin", encoder, device=config.device)
    return primary, fallback


def _provider_changed(old: PipelineConfig, new: PipelineConfig) -> bool:
    """Whether `new` needs another provider: a change of an option the active provider does not
    use (fixed_text while the VLM runs) needs none."""
    if (old.provider, old.device) != (new.provider, new.device):
        return True
    return any(getattr(old, field) != getattr(new, field) for field in PROVIDERS[new.provider])


class Pipeline:
    """Restores frames with `backend`; the only way in for its users (the node, the bag
    evaluation): `process`, `reconfigure`, `describe`.

    With a `refresher` the prior follows the frames asynchronously (the node); without one,
    `refresh_now` describes a frame synchronously with `provider` (reproducible offline runs).
    """

    def __init__(self, model: LDRNet, backend: Backend, encoder: Encoder,
                 refresher: PriorRefresher | None = None, initial: Prior | None = None,
                 provider: PriorProvider | None = None, config: PipelineConfig | None = None):
        self.model = model.eval()
        self.backend = backend
        self.encoder = encoder
        self.refresher = refresher
        self.provider = provider
        self.config = config or PipelineConfig()
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
        image = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)
        out = self.backend.infer(image)
        restored = out.restored[0].clamp(0.0, 1.0).permute(1, 2, 0).contiguous().numpy()
        return Restoration(restored, out.degradation_map[0, 0].numpy(),
                           out.expert_indices[0].numpy(), prior, time.perf_counter() - start)

    def reconfigure(self, **changes) -> None:
        """Apply run-time changes to PipelineConfig fields: the prior provider (built here, with
        the same fallback as at start-up, and only if the active one is affected) and the
        refresher's periods and thresholds. All or nothing: if the new provider cannot be built
        the error is raised and the pipeline keeps its previous configuration."""
        config = dataclasses.replace(self.config, **changes)  # TypeError on an unknown field
        if _provider_changed(self.config, config):
            primary, fallback = prior_providers(config, self.encoder)
            if self.refresher is not None:
                self.refresher.use(primary, fallback)
            else:
                self.provider = primary
        if self.refresher is not None:
            for field, attribute in _REFRESHER_FIELDS.items():
                setattr(self.refresher, attribute, getattr(config, field))
        self.config = config

    def describe(self) -> dict:
        """What runs, for logs and diagnostics: the backend's facts and the refresher's health
        (provider in force, primary, fallback, failures)."""
        return {"backend": self.backend.describe(),
                "refresher": self.refresher.health() if self.refresher else {}}

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
    if not asynchronous:
        provider = prior_providers(config, encoder)[0]
        return Pipeline(model, backend, encoder, initial=NoPrior(encoder).describe(None),
                        provider=provider, config=config)
    provider, fallback = prior_providers(config, encoder)
    refresher = PriorRefresher(provider, fallback=fallback, encoder=encoder,
                               period=config.prior_period_s,
                               change_threshold=config.change_threshold,
                               min_confidence=config.min_confidence,
                               timeout=config.prior_timeout_s)
    return Pipeline(model, backend, encoder, refresher, config=config)
