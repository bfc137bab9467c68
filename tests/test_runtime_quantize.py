"""onnxruntime:int8 runs the statically quantized graph, close to fp32, quantized once per
fp32 model and calibration recipe."""
import math

import numpy as np
import pytest
import torch
from conftest import TINY, random_prior, trained_like

from allweather_ros.model import LDRNet
from allweather_ros.runtime import bench, quantize
from allweather_ros.runtime.export import cached_onnx
from allweather_ros.runtime.quantize import Calibration, cached_int8_onnx
from allweather_ros.runtime.select import create_backend

SMALL = Calibration(frames=4, crop=64)  # a quick recipe for the cache tests


def text_model(seed: int) -> LDRNet:
    """A tiny restorer that takes the text encoder's 384-d tokens, as calibration feeds it."""
    torch.manual_seed(seed)
    return trained_like(LDRNet(**{**TINY, "prior_dim": 384})).eval()


@pytest.fixture(scope="module")
def model() -> LDRNet:
    return text_model(0)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_int8_backend_matches_fp32_closely(model, cache_dir, one_thread, monkeypatch):
    monkeypatch.setattr(quantize, "DEFAULT_CALIBRATION", SMALL)
    fp32 = create_backend("onnxruntime", model, cache_dir, threads=1)
    int8 = create_backend("onnxruntime:int8", model, cache_dir, threads=1)
    assert int8.describe()["precision"] == "int8" and fp32.describe()["precision"] == "fp32"
    cache = model.encode_prior(*random_prior(6, 384))
    image = bench.test_frame(96, 64)
    outputs = []
    for backend in (fp32, int8):
        backend.set_prior(cache)
        outputs.append(backend.infer(image))
    ref, got = outputs
    for name in ("restored", "degradation_map"):
        assert getattr(got, name).shape == getattr(ref, name).shape
        assert getattr(got, name).dtype == np.float32
    assert 0.0 <= got.degradation_map.min() and got.degradation_map.max() <= 1.0
    for bound in (np.amin, np.amax):
        assert abs(bound(got.restored) - bound(ref.restored)) < 0.05
    mse = float(np.mean((np.clip(got.restored, 0, 1) - np.clip(ref.restored, 0, 1)) ** 2))
    assert mse > 0, "the int8 graph must differ from fp32 (else nothing was quantized)"
    assert 10 * math.log10(1 / mse) > 30


def test_the_int8_file_is_reused_and_follows_the_fp32_model(model, cache_dir, monkeypatch):
    fp32_path = cached_onnx(model, cache_dir)
    first = cached_int8_onnx(model, fp32_path, cache_dir, SMALL)
    stamp = first.stat().st_mtime_ns

    def refuse(*args):
        raise AssertionError("quantized again although the cached file is valid")

    with monkeypatch.context() as patched:
        patched.setattr(quantize, "quantize", refuse)
        assert cached_int8_onnx(model, fp32_path, cache_dir, SMALL) == first
    assert first.stat().st_mtime_ns == stamp
    other = text_model(1)
    assert cached_int8_onnx(other, cached_onnx(other, cache_dir), cache_dir, SMALL) != first
    other_recipe = Calibration(frames=4, crop=64, seed=SMALL.seed + 1)
    assert cached_int8_onnx(model, fp32_path, cache_dir, other_recipe) != first
