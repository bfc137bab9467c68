"""The prior's networks as ONNX graphs run by ONNX Runtime and numpy, for a pipeline whose frame
backend is ONNX Runtime: with them the process never imports torch or transformers (about
300 MB of resident memory, docs/benchmarks.md). Each matches its torch original (the source of
truth, exported by export.py): the text encoder, the built-in estimator's network and the
restorer's prior encoding. The graphs come from graphs.ensure_graphs.

Each session runs on one thread, and lean (create_session's `rarely_run`): the prior is
refreshed beside the frame path, seconds apart, and the frame backend needs the cores.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..network_io import INPUTS, PRIOR_INPUTS, PriorCache, read_metadata
from ..prior.text_encoder import CachedTextEncoder
from .graphs import ensure_graphs
from .onnxruntime_backend import create_session

PRIOR_THREADS = 1


class OnnxTextEncoder(CachedTextEncoder):
    """TextEncoder's tokens from its ONNX graph; `encode` gives float32 numpy (L, dim).

    The weights are verified against the pinned sha256 as the torch encoder's are, and the
    graph is the one exported from those weights (its name holds their hash)."""

    def __init__(self, cache_dir: str | Path, model_dir: str | Path | None = None,
                 expected_sha256: str | None = None, cache_size: int = 256):
        super().__init__(model_dir, expected_sha256, cache_size=cache_size)
        graph = ensure_graphs(cache_dir, text_encoder=(self.model_dir, self.sha256))
        self.session = create_session(graph["text-encoder"], threads=PRIOR_THREADS, rarely_run=True)
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def _hidden(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, batch)[0]


class OnnxEstimatorNet:
    """The built-in estimator's network (builtin.EstimatorNet) from its ONNX graph."""

    def __init__(self, weights: str | Path, cache_dir: str | Path):
        config = read_metadata(weights)["config"]
        self.input_side, self.max_aspect = config["input_side"], config["max_aspect"]
        graph = ensure_graphs(cache_dir, estimator=weights)["estimator"]
        self.session = create_session(graph, threads=PRIOR_THREADS, rarely_run=True)

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        types, severity = self.session.run(None, {"frame": frame})
        return types[0], severity[0]


class OnnxPriorEncoding:
    """The restorer's LDRNet.encode_prior from its ONNX graph: tokens (L, C) -> PriorCache of
    numpy arrays. `config` is the restorer's, read from its weights file."""

    def __init__(self, graph: str | Path, weights: str | Path):
        self.config = read_metadata(weights)["config"]
        self.session = create_session(graph, threads=PRIOR_THREADS, rarely_run=True)

    def __call__(self, tokens) -> PriorCache:
        tokens = np.asarray(tokens, np.float32)[None]
        mask = np.ones(tokens.shape[:2], bool)
        kv, bias = self.session.run(list(INPUTS[1:]), dict(zip(PRIOR_INPUTS, (tokens, mask),
                                                               strict=True)))
        return PriorCache(kv, bias)
