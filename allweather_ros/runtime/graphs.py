"""The ONNX graphs a weights file exports to, found in the cache folder without torch.

A pipeline whose frame backend is ONNX Runtime runs the prior's networks as graphs too (the
restorer's prior encoding, the built-in estimator, the text encoder; see onnx_prior.py), so its
process never imports torch or transformers. Each graph is named by its source's digest: a
weights file's configuration and tensors (the same digest export.model_digest gives the model
loaded from it, so the torch path finds the same files), the text encoder's pinned sha256.
Graphs that are missing are exported by a child process, `python -m allweather_ros.runtime.export`,
which imports torch there and exits; where torch is not installed the error names that command.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..prior.text_encoder import MAX_TOKENS

log = logging.getLogger(__name__)

MAX_PRIOR_TOKENS = MAX_TOKENS
"""The prior graphs' longest token sequence (their dynamic axis runs 1..this)."""
MODULE = "allweather_ros.runtime.export"
"""The child process that exports missing graphs (with torch)."""


class GraphMissing(RuntimeError):
    """A graph is not in the cache and cannot be exported here (torch is not installed)."""


GRAPH_FORMAT = 2
"""Part of every graph's digest: raised whenever what an exported graph takes or gives changes,
so that graphs cached by an older version are exported again (2: the frame gate's opening,
network_io.GATE_OPENING)."""


def digest(config: dict, tensors: Iterable[tuple[str, np.ndarray]]) -> str:
    """A short hash of a network's configuration and its named tensors (in the given order), and
    of GRAPH_FORMAT."""
    h = hashlib.sha256(f"graph format {GRAPH_FORMAT}".encode())
    h.update(json.dumps(config, sort_keys=True, default=list).encode())
    for name, array in tensors:
        h.update(name.encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def weights_digest(path: str | Path) -> str:
    """digest() of a safetensors weights file (config from its metadata), read without torch."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        config = json.loads((f.metadata() or {}).get("config", "null"))
        if config is None:
            raise ValueError(f"{path} has no model config in its metadata")
        return digest(config, ((name, f.get_tensor(name)) for name in sorted(f.keys())))


def graph_path(cache_dir: str | Path, kind: str, key: str) -> Path:
    """Where the graph `kind` ("ldr", "ldr-prior", "estimator", "text-encoder") of the source
    with digest `key` lies in the cache folder."""
    return Path(cache_dir) / f"{kind}-{key}.onnx"


def expected(cache_dir: str | Path, restorer: str | Path | None = None,
             estimator: str | Path | None = None,
             text_encoder: tuple[Path, str] | None = None) -> dict[str, Path]:
    """kind -> path of the fp32 graphs these sources export to (the int8 graph's name depends
    on the fp32 graph's bytes: see int8_graph)."""
    paths = {}
    if restorer is not None:
        key = weights_digest(restorer)
        paths["ldr"] = graph_path(cache_dir, "ldr", key)
        paths["ldr-prior"] = graph_path(cache_dir, "ldr-prior", key)
    if estimator is not None:
        paths["estimator"] = graph_path(cache_dir, "estimator", weights_digest(estimator))
    if text_encoder is not None:
        paths["text-encoder"] = graph_path(cache_dir, "text-encoder", text_encoder[1][:16])
    return paths


def int8_graph(fp32_path: Path, cache_dir: str | Path) -> Path:
    from .quantize import DEFAULT_CALIBRATION, int8_path

    return int8_path(fp32_path, cache_dir, DEFAULT_CALIBRATION)


def export_command(cache_dir: str | Path, restorer: str | Path | None = None, int8: bool = False,
                   estimator: str | Path | None = None,
                   text_encoder: tuple[Path, str] | None = None) -> list[str]:
    """The command that exports these graphs (run by ensure_graphs in a child process)."""
    command = [sys.executable, "-m", MODULE, "--cache-dir", str(cache_dir)]
    if restorer is not None:
        command += ["--restorer", str(restorer)] + (["--int8"] if int8 else [])
    if estimator is not None:
        command += ["--estimator", str(estimator)]
    if text_encoder is not None:
        command += ["--text-encoder", str(text_encoder[0]), "--text-encoder-sha256",
                    text_encoder[1]]
    return command


def ensure_graphs(cache_dir: str | Path, restorer: str | Path | None = None, int8: bool = False,
                  estimator: str | Path | None = None,
                  text_encoder: tuple[Path, str] | None = None) -> dict[str, Path]:
    """kind -> path of each graph the sources export to ("ldr" is the int8 graph with `int8`),
    exported first by a child process when any is missing, so that this process stays free of
    torch. GraphMissing when one is missing and torch is not installed here."""
    sources = {"restorer": restorer, "estimator": estimator, "text_encoder": text_encoder}
    paths = expected(cache_dir, **sources)
    missing = [p.name for p in paths.values() if not p.is_file()]
    if int8 and (missing or not int8_graph(paths["ldr"], cache_dir).is_file()):
        missing.append("the int8 per-frame graph")
    if missing:
        command = export_command(cache_dir, int8=int8, **sources)
        shown = " ".join(command[1:])
        if importlib.util.find_spec("torch") is None:
            raise GraphMissing(
                f"the ONNX graphs {missing} are not in {cache_dir} and torch, which exports "
                f"them, is not installed here: run `python {shown}` where torch is (same "
                f"weights) and copy the files into {cache_dir}")
        log.info("exporting the ONNX graphs %s in a child process (it imports torch there, this "
                 "process stays free of it): python %s", missing, shown)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"exporting {missing} failed (python {shown}):\n"
                               f"{done.stderr[-3000:]}")
    if int8:
        paths["ldr"] = int8_graph(paths["ldr"], cache_dir)
    absent = [str(p) for p in paths.values() if not p.is_file()]
    if absent:
        raise RuntimeError(f"the export left {absent} missing")
    return paths
