"""TensorRT backend: what is testable without TensorRT, and a marked build-and-run check."""
import sys

import pytest
import torch

from allweather_ros.model import PriorCache
from allweather_ros.runtime import select, tensorrt_backend
from allweather_ros.runtime.backend import BackendUnavailable
from allweather_ros.runtime.engine_cache import DEFAULT_PRIOR_LENGTH, EngineCache, ShapeProfile
from allweather_ros.runtime.export import example_inputs, export_onnx
from allweather_ros.runtime.tensorrt_backend import (
    DEFAULT_SIZES,
    TensorRTBackend,
    engine_profile,
    profile_shapes,
)
from allweather_ros.working_resolution import working_size

# What the dynamo exporter declares: batch 1, dynamic H, W and prior length (see export.py).
DIMS = {"image": (1, 3, -1, -1), "prior_kv": (1, 2, -1, 64), "prior_bias": (1, -1)}


def test_missing_tensorrt_is_backend_unavailable_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(BackendUnavailable, match="tensorrt Python package is not importable"):
        TensorRTBackend(tmp_path / "model.onnx", engine_dir=tmp_path)


def test_missing_torch_tensorrt_is_backend_unavailable(monkeypatch, tiny_model):
    from allweather_ros.runtime.torch_tensorrt_backend import TorchTensorRTBackend

    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)
    with pytest.raises(BackendUnavailable, match="torch_tensorrt is not importable"):
        TorchTensorRTBackend(tiny_model)


def test_profile_spans_the_camera_sizes_and_optimises_for_the_first():
    profile = ShapeProfile.from_sizes(DEFAULT_SIZES)
    assert profile.height == (480, 480, 1080) and profile.width == (640, 640, 1920)
    assert profile.prior_length == DEFAULT_PRIOR_LENGTH
    assert profile.accepts(720, 1280) and profile.accepts(1080, 1920, prior_length=64)
    assert not profile.accepts(1200, 1920) and not profile.accepts(480, 640, prior_length=65)
    assert ShapeProfile.from_sizes([(1280, 720), (640, 480)]).height == (480, 720, 720)


def test_an_engine_for_a_working_resolution_takes_every_camera_shrunk_to_it():
    profile = ShapeProfile.for_working_side(640)
    assert profile.height == (64, 480, 640) and profile.width == (64, 640, 640)
    for height, width in ((480, 640), (720, 1280), (1080, 1920), (1920, 1080), (240, 320)):
        size = working_size(height, width, 640) or (height, width)
        assert profile.accepts(*size)
    assert not profile.accepts(720, 1280)  # a frame the pipeline would have shrunk


def test_an_engine_names_the_working_resolutions_it_can_take():
    """A run-time change of processing_max_side is checked against the built profile."""
    profile = ShapeProfile.for_working_side(640)
    assert profile.working_side_problem(640) == profile.working_side_problem(320) == ""
    for outside in (800, 0, 32):
        assert "64 to 640" in profile.working_side_problem(outside)
    whole_frames = ShapeProfile.from_sizes(DEFAULT_SIZES)  # built with processing_max_side 0
    assert whole_frames.working_side_problem(1080) == ""
    assert "restart" in whole_frames.working_side_problem(320)


def test_the_pipelines_working_resolution_sizes_the_tensorrt_engine(monkeypatch, tiny_model,
                                                                    tmp_path):
    built = []

    class Recorder:  # stands in for TensorRTBackend: what it would be built for
        def __init__(self, onnx_path, engine_dir, precision, profile):
            built.append(profile)

    monkeypatch.setattr(tensorrt_backend, "TensorRTBackend", Recorder)
    monkeypatch.setattr(select, "cached_onnx", lambda model, cache_dir: tmp_path / "ldr.onnx")
    select.create_backend("tensorrt:fp16", tiny_model, tmp_path, max_side=320)
    select.create_backend("tensorrt:fp16", tiny_model, tmp_path)  # full-size frames
    assert built[0] == ShapeProfile.for_working_side(320) == engine_profile(320)
    assert built[1] == ShapeProfile.from_sizes(DEFAULT_SIZES) == engine_profile(0)


def test_one_camera_size_gives_a_static_profile():
    profile = ShapeProfile.from_sizes([(1280, 720)], prior_length=(16, 16, 16))
    assert profile.height == (720, 720, 720) and profile.width == (1280, 1280, 1280)
    assert profile.slug() == "h720-720-720_w1280-1280-1280_l16-16-16"


def test_prior_length_cap_matches_the_text_encoder():
    from allweather_ros.prior.text_encoder import MAX_TOKENS

    assert DEFAULT_PRIOR_LENGTH[2] == MAX_TOKENS


def test_profile_shapes_fill_dynamic_axes_from_the_profile():
    profile = ShapeProfile((480, 480, 1080), (640, 640, 1920), (1, 16, 64))
    shapes = profile_shapes(profile, DIMS)
    assert shapes["image"] == ((1, 3, 480, 640), (1, 3, 480, 640), (1, 3, 1080, 1920))
    assert shapes["prior_kv"] == ((1, 2, 1, 64), (1, 2, 16, 64), (1, 2, 64, 64))
    assert shapes["prior_bias"] == ((1, 1), (1, 16), (1, 64))
    dynamic_batch = profile_shapes(profile, {"image": (-1, 3, -1, -1)})
    assert dynamic_batch["image"][2] == (1, 3, 1080, 1920)


def test_profile_shapes_reject_a_dynamic_axis_the_profile_does_not_cover():
    with pytest.raises(ValueError, match="prior_kv.*axis 3"):
        profile_shapes(ShapeProfile.from_sizes([(640, 480)]), {"prior_kv": (1, 2, -1, -1)})


def _tensorrt_ready():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.requires_tensorrt
@pytest.mark.skipif(not _tensorrt_ready(), reason="needs TensorRT and a CUDA device")
def test_engine_builds_caches_and_matches_pytorch(tiny_model, tmp_path, monkeypatch):
    torch.nn.init.normal_(tiny_model.ending[0].weight, std=0.1)  # not the identity at init
    onnx_path = export_onnx(tiny_model, tmp_path / "tiny.onnx")
    profile = ShapeProfile.from_sizes([(96, 64), (64, 48)], prior_length=(1, 8, 16))
    backend = TensorRTBackend(onnx_path, tmp_path / "engines", "fp32", profile)
    assert EngineCache(tmp_path / "engines").entries() == [backend.key]
    for width, height, length in [(96, 64, 8), (64, 48, 16), (70, 50, 3)]:
        image, kv, bias = example_inputs(tiny_model, width, height, length)
        with torch.no_grad():
            want = tiny_model(image, kv, bias)
        backend.set_prior(PriorCache(kv, bias))
        got = backend.infer(image)
        assert torch.allclose(got.restored, want.restored, atol=1e-3)
        assert torch.allclose(got.degradation_map, want.degradation_map, atol=1e-3)
        assert got.expert_indices.dtype == torch.int64
    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached engine should have been loaded")

    monkeypatch.setattr(tensorrt_backend, "build_engine", no_rebuild)
    again = TensorRTBackend(onnx_path, tmp_path / "engines", "fp32", profile)
    assert again.key == backend.key
    with pytest.raises(ValueError, match="outside this engine's profile"):
        backend.infer(torch.rand(1, 3, 200, 200))


@pytest.mark.requires_tensorrt
@pytest.mark.skipif(not _tensorrt_ready(), reason="needs TensorRT and a CUDA device")
def test_an_engine_of_a_gated_network_takes_the_gates_opening(tiny_model, tmp_path):
    from allweather_ros.training.frame_gate import with_frame_gate

    gated = with_frame_gate(tiny_model, hidden=4).eval()
    torch.nn.init.normal_(gated.frame_gate.body[2].weight, std=0.5)  # a gate that varies
    torch.nn.init.normal_(gated.ending[0].weight, std=0.1)  # a correction to gate
    profile = ShapeProfile.from_sizes([(64, 48)], prior_length=(1, 8, 16))
    backend = TensorRTBackend(export_onnx(gated, tmp_path / "gated.onnx"), tmp_path, "fp32",
                              profile)
    image, kv, bias, _ = example_inputs(gated, 64, 48, 8)
    for opening in (None, 1.0):
        cache = PriorCache(kv, bias, None if opening is None else torch.tensor([opening]))
        with torch.no_grad():
            want = gated(image, *cache)
        backend.set_prior(cache)
        assert torch.allclose(backend.infer(image).restored, want.restored, atol=1e-3)
