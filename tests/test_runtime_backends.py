"""Backends run the same graph: parity, prior handling, selection and the benchmark."""
import logging

import numpy as np
import pytest
import torch
from conftest import TINY, random_prior, trained_like

from allweather_ros.cli import main
from allweather_ros.model import LDRNet
from allweather_ros.runtime import bench, torch_backend
from allweather_ros.runtime.backend import BackendUnavailable
from allweather_ros.runtime.export import cached_onnx
from allweather_ros.runtime.select import create_backend


@pytest.fixture(scope="module")
def model() -> LDRNet:
    torch.manual_seed(0)
    return trained_like(LDRNet(**TINY)).eval()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_onnxruntime_matches_torch_and_follows_the_prior(model, cache_dir):
    torch_backend = create_backend("torch", model, cache_dir)
    ort_backend = create_backend("onnxruntime", model, cache_dir)
    image = torch.rand(1, 3, 30, 44)
    outputs = []
    for seed in (1, 2):
        cache = model.encode_prior(*random_prior(5, TINY["prior_dim"], seed))
        for backend in (torch_backend, ort_backend):
            backend.set_prior(cache)
        ref, got = torch_backend.infer(image), ort_backend.infer(image)
        assert isinstance(got.restored, np.ndarray)  # ONNX Runtime's outputs stay numpy
        np.testing.assert_allclose(got.restored, ref.restored.numpy(), rtol=1e-4, atol=1e-5)
        assert np.array_equal(got.expert_indices, ref.expert_indices.numpy())
        outputs.append(got.restored)
    assert not np.array_equal(outputs[0], outputs[1]), "a new prior must change the frames"


def test_onnxruntime_workers_sleep_when_idle(model, cache_dir):
    """Spinning intra-op threads would take the cores a node's DDS and prior threads need."""
    options = create_backend("onnxruntime", model, cache_dir).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_onnx_file_is_reused_for_the_same_weights(model, cache_dir):
    first = cached_onnx(model, cache_dir)
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(model, cache_dir) == first and first.stat().st_mtime_ns == stamp
    changed = LDRNet(**TINY)
    assert cached_onnx(changed, cache_dir) != first


def test_torch_backend_leaves_the_callers_model_alone(model, cache_dir):
    backend = create_backend("torch:bf16", model, cache_dir)
    assert next(model.parameters()).dtype == torch.float32
    backend.set_prior(model.encode_prior(*random_prior(4, TINY["prior_dim"])))
    assert backend.infer(torch.rand(1, 3, 16, 16)).restored.dtype == torch.float32


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_device_that_emulates_it_is_warned_about(model, cache_dir, caplog,
                                                           monkeypatch, native):
    monkeypatch.setattr(torch_backend, "native_bf16", lambda device: native)
    with caplog.at_level(logging.WARNING, logger=torch_backend.__name__):
        create_backend("torch:bf16", model, cache_dir)
        create_backend("torch", model, cache_dir)
    warned = [r.getMessage() for r in caplog.records if r.name == torch_backend.__name__]
    if native:
        assert warned == []
    else:  # bf16 warned about once, fp32 not at all
        assert len(warned) == 1 and "emulated" in warned[0]


def test_infer_before_a_prior_is_refused(model, cache_dir):
    with pytest.raises(RuntimeError, match="set_prior"):
        create_backend("torch", model, cache_dir).infer(torch.rand(1, 3, 8, 8))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallbacks")
def test_gpu_backends_say_why_they_cannot_run(model, cache_dir):
    for name in ("torch-cuda", "onnxruntime-gpu"):
        with pytest.raises(BackendUnavailable):
            create_backend(name, model, cache_dir)
    with pytest.raises(ValueError, match="unknown backend"):
        create_backend("openvino", model, cache_dir)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallbacks")
def test_auto_picks_onnxruntime_on_a_cpu_and_logs_what_it_skipped(model, cache_dir, caplog):
    with caplog.at_level(logging.INFO, logger="allweather_ros.runtime.select"):
        backend = create_backend("auto", model, cache_dir)
    assert backend.name == "onnxruntime"
    assert [s.split(":")[0] for s in backend.selection["skipped"]] == [
        "tensorrt", "onnxruntime-gpu", "torch-cuda"]
    assert "auto chose onnxruntime" in caplog.text


def test_auto_without_cuda_is_what_auto_picks_on_a_cpu_per_precision():
    """The torch-free pipeline resolves `auto` by this where no CUDA device can be."""
    from allweather_ros.runtime.registry import auto_without_cuda

    assert auto_without_cuda("fp32") == "onnxruntime"
    assert auto_without_cuda("int8") == "onnxruntime"
    assert auto_without_cuda("bf16") == "torch"  # ONNX Runtime has no bf16 here


def test_benchmark_reports_every_field(model, cache_dir):
    results = bench.run(model, ["onnxruntime", "torch:bf16", "torch-cuda"], [(64, 48)],
                        cache_dir, frames=3, warmup=1)
    by_name = {r["backend"]: r for r in results}
    ort = by_name["onnxruntime"]
    for key in ("size", "fps", "latency_ms_p50", "latency_ms_p99", "gflops",
                "achieved_gflops_per_s", "ceiling_gflops_per_s"):
        assert ort[key] > 0 if key != "size" else ort[key] == "64x48"
    assert ort["latency_ms_p99"] >= ort["latency_ms_p50"]
    assert ort["psnr_vs_fp32_db"] is None or ort["psnr_vs_fp32_db"] > 60
    assert 25 < by_name["torch:bf16"]["psnr_vs_fp32_db"] < 80
    if not torch.cuda.is_available():
        assert by_name["torch-cuda"]["available"] is False


def test_bench_cli_json(tmp_path, capsys):
    assert main(["bench", "--backend", "torch", "--size", "32x24", "--frames", "2",
                 "--cache-dir", str(tmp_path), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["results"][0]["backend"] == "torch"
    assert report["results"][0]["size"] == "32x24"


def test_build_engine_without_tensorrt_says_so(tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here: the engine would really be built")
    assert main(["build-engine", "--cache-dir", str(tmp_path)]) == 2
    assert "tensorrt" in capsys.readouterr().err.lower()
    assert main(["build-engine", "--processing-max-side", "0", "--size", "64x48",
                 "--cache-dir", str(tmp_path)]) == 2
    assert "tensorrt" in capsys.readouterr().err.lower()


def test_build_engine_sizes_belong_to_full_resolution(tmp_path, capsys):
    assert main(["build-engine", "--size", "1280x720", "--cache-dir", str(tmp_path)]) == 2
    assert "--size is for --processing-max-side 0" in capsys.readouterr().err
