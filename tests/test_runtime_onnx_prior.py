"""The torch-free ONNX Runtime path: the prior's networks as ONNX graphs agree with their torch
originals, are found by the weights' digest, are exported by a child process when missing (or
named in an error where torch is absent), and a pipeline runs on them without torch."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import Degradation
from allweather_ros.model.weights import load_weights
from allweather_ros.pipeline import DEFAULT_WEIGHTS
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
from allweather_ros.prior.estimator_input import estimator_input, input_size
from allweather_ros.prior.estimator_net import TorchEstimatorNet, load_estimator
from allweather_ros.prior.text_encoder import TextEncoder, text_encoder_files
from allweather_ros.runtime.export import model_digest
from allweather_ros.runtime.graphs import GraphMissing, ensure_graphs, weights_digest
from allweather_ros.runtime.onnx_prior import OnnxEstimatorNet, OnnxPriorEncoding, OnnxTextEncoder
from allweather_ros.runtime.torch_backend import TorchPriorEncoding

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A cache folder with every graph of the shipped weights, exported as a pipeline does on a
    cold cache (a child process), and what was logged meanwhile."""
    cache = tmp_path_factory.mktemp("graphs")
    records = _Records()
    logger = logging.getLogger("allweather_ros.runtime.graphs")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        paths = ensure_graphs(cache, DEFAULT_WEIGHTS, estimator=SHIPPED_WEIGHTS,
                              text_encoder=text_encoder_files())
    finally:
        logger.removeHandler(records)
    return cache, paths, records.messages


def test_a_cold_cache_is_filled_by_a_child_process_and_says_so(exported):
    cache, paths, messages = exported
    assert set(paths) == {"ldr", "ldr-prior", "estimator", "text-encoder"}
    assert all(p.is_file() and p.parent == cache for p in paths.values())
    assert any("child process" in m and "allweather_ros.runtime.export" in m for m in messages)
    assert "torch" not in {m.split()[0] for m in messages}  # (the parent needed no torch)
    again = ensure_graphs(cache, DEFAULT_WEIGHTS, estimator=SHIPPED_WEIGHTS,
                          text_encoder=text_encoder_files())
    assert again == paths and all(p.stat().st_mtime_ns == again[k].stat().st_mtime_ns
                                  for k, p in paths.items())


def test_graphs_are_named_by_the_digest_the_torch_path_uses():
    """Read from the file without torch, the digest is the loaded model's: the torch backends'
    cached_onnx and the torch-free path share one restorer graph."""
    assert weights_digest(DEFAULT_WEIGHTS) == model_digest(load_weights(DEFAULT_WEIGHTS))
    assert weights_digest(SHIPPED_WEIGHTS) == model_digest(load_estimator(SHIPPED_WEIGHTS))


@pytest.mark.parametrize("height,width", [(480, 640), (37, 53), (100, 1000), (1000, 90),
                                          (129, 128), (300, 200)])
def test_the_numpy_resize_is_torchs(height, width):
    frame = np.random.default_rng(height).random((height, width, 3), dtype=np.float32)
    size = input_size(height, width, 128, 2.0)
    x = torch.from_numpy(frame.transpose(2, 0, 1).copy())[None]
    if size != (height, width):
        shrink = size[0] <= height and size[1] <= width
        x = F.interpolate(x, size=size, mode="area" if shrink else "bilinear",
                          align_corners=None if shrink else False)
    got = estimator_input(frame, 128, 2.0)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, x.numpy(), atol=1e-5)


def test_the_text_encoder_graph_matches_torch(exported):
    cache, _, _ = exported
    onnx, reference = OnnxTextEncoder(cache), TextEncoder()
    assert onnx.dim == reference.dim == 384
    for text in ("heavy rain", "The image is degraded by moderate snow and slight haze.",
                 " ".join(["dense fog and lens drops"] * 30)):
        got, want = onnx.encode(text), reference.encode(text).numpy()
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_prior_encoding_graph_matches_torch(exported):
    _, paths, _ = exported
    onnx = OnnxPriorEncoding(paths["ldr-prior"], DEFAULT_WEIGHTS)
    reference = TorchPriorEncoding(load_weights(DEFAULT_WEIGHTS))
    assert onnx.config == json.loads(json.dumps(reference.config))  # (lists for tuples)
    rng = np.random.default_rng(0)
    for length in (1, 7, 64):
        tokens = rng.standard_normal((length, 384)).astype(np.float32)
        got, want = onnx(tokens), reference(tokens)
        assert got.gate_opening is None and want.gate_opening is None  # the pipeline's to set
        for a, b in zip((got.kv, got.bias), (want.kv, want.bias), strict=True):
            assert isinstance(a, np.ndarray) and a.shape == tuple(b.shape)
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4, rtol=1e-4)


def test_the_estimator_graph_gives_torchs_logits_and_descriptions(exported):
    """Same logits, and so the same calibrated descriptions, on clear and weathered frames."""
    cache, _, _ = exported
    net = OnnxEstimatorNet(SHIPPED_WEIGHTS, cache)
    reference = TorchEstimatorNet.load(SHIPPED_WEIGHTS)
    onnx = BuiltinEstimator(load_net=lambda path: OnnxEstimatorNet(path, cache))
    torch_provider = BuiltinEstimator()
    assert onnx.calibration == torch_provider.calibration and onnx.calibration.floor < 1.0
    rng = np.random.default_rng(3)
    scenes = [s.load(320).astype(np.float32) / 255.0 for s in skimage_scenes()[:2]]
    weathers = [[], [Degradation("rain", "heavy")], [Degradation("haze", "moderate")],
                [Degradation("snow", "slight"), Degradation("raindrop", "heavy")]]
    texts = set()
    for scene in scenes:
        for weather in weathers:
            frame = synthesize(scene, rng, weather).degraded if weather else scene
            x = estimator_input(frame, net.input_side, net.max_aspect)
            for got, want in zip(net(x), reference(x), strict=True):
                np.testing.assert_allclose(got, want, atol=1e-4)
            a, b = onnx.describe(frame), torch_provider.describe(frame)
            assert a.text == b.text and a.severity == b.severity
            assert a.labels == pytest.approx(b.labels, abs=1e-4)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-3)
            texts.add(a.text)
    assert len(texts) > 1, "the frames must not all read alike"


PIPELINE = """
import sys
sys.modules["torch"] = None  # any import of them fails: the path must not even try
sys.modules["transformers"] = None
import time
import numpy as np
from allweather_ros.pipeline import PipelineConfig, build_pipeline
config = PipelineConfig(backend={backend!r}, provider="builtin", cache_dir={cache!r},
                        prior_period_s=0.2, threads=1)
pipeline = build_pipeline(config, asynchronous=True)
frame = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)
deadline = time.monotonic() + 60
while pipeline.refresher.health()["refresh_count"] < 2 and time.monotonic() < deadline:
    out = pipeline.process(frame)
    time.sleep(0.05)
out = pipeline.process(frame)
health = pipeline.refresher.health()
for provider in ("fixed", "builtin"):  # providers rebuilt at run time stay torch-free too
    pipeline.reconfigure(provider=provider, fixed_text="dense fog")
    count = pipeline.refresher.health()["refresh_count"]
    while pipeline.refresher.health()["refresh_count"] <= count + 1 and time.monotonic() < deadline:
        pipeline.process(frame)
        time.sleep(0.05)
    assert pipeline.refresher.health()["provider"] == provider, pipeline.refresher.health()
pipeline.close()
assert out.restored.shape == (48, 64, 3) and out.restored.dtype == np.float32
assert health["refresh_count"] >= 2 and health["provider"] == "builtin", health
assert health["last_error"] is None, health
assert out.prior.tokens is not None and isinstance(out.prior.tokens, np.ndarray)
assert "torch" not in {{m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}}
assert "transformers" not in {{m.split(".")[0] for m in sys.modules if sys.modules[m]}}
print("prior:", out.prior.text)
"""


def _child(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("backend", ["onnxruntime", "auto"])
def test_an_onnxruntime_pipeline_restores_and_refreshes_without_torch(exported, backend):
    """`auto` too (the default), where no CUDA device can be: it can only pick ONNX Runtime."""
    from allweather_ros.runtime.registry import cuda_possible

    if backend == "auto" and cuda_possible():
        pytest.skip("this machine may have CUDA: auto is resolved by torch here")
    cache, _, _ = exported
    done = _child(PIPELINE.format(backend=backend, cache=str(cache)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "prior: The image is" in done.stdout


def test_a_missing_graph_without_torch_names_the_command_that_exports_it(tmp_path):
    done = _child(PIPELINE.format(backend="onnxruntime", cache=str(tmp_path)))
    assert done.returncode != 0
    assert "GraphMissing" in done.stderr and "torch" in done.stderr
    assert f"-m allweather_ros.runtime.export --cache-dir {tmp_path} --restorer" in done.stderr
    assert not list(tmp_path.iterdir()), "nothing is exported where torch is absent"


def test_graph_missing_is_raised_in_process_when_torch_cannot_be_found(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(GraphMissing, match="estimator-"):
        ensure_graphs(tmp_path, estimator=SHIPPED_WEIGHTS)
