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


def test_export_and_bench_take_the_shipped_weights_unless_told_otherwise(tmp_path):
    """What the node runs, not a network of random weights; --config asks for one."""
    from allweather_ros.cli import _load_model, build_parser
    from allweather_ros.pipeline import load_model
    from allweather_ros.runtime.export import model_digest

    shipped = model_digest(load_model(""))
    for command in (["export", "--out", str(tmp_path / "x.onnx")], ["bench"]):
        assert model_digest(_load_model(build_parser().parse_args(command))) == shipped
    assert model_digest(_load_model(build_parser().parse_args(["bench", "--config", "rt"]))) \
        != shipped


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


@pytest.fixture
def engine_builds(monkeypatch, tmp_path):
    """build-engine with TensorRT stood in for: what it would build (weights' digest,
    precision, profile, cache folder)."""
    from allweather_ros.runtime import export, tensorrt_backend

    built = []

    class Recorder:
        def __init__(self, onnx_path, engine_dir, precision, profile):
            built[-1].update(precision=precision, profile=profile, engine_dir=engine_dir)

        def describe(self):
            return {}

    def onnx(model, cache_dir):
        built.append({"digest": export.model_digest(model)})
        return tmp_path / "ldr.onnx"

    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: None)
    monkeypatch.setattr(tensorrt_backend, "TensorRTBackend", Recorder)
    monkeypatch.setattr(export, "cached_onnx", onnx)
    return built


def test_build_engine_builds_what_the_node_runs_by_default(engine_builds, tmp_path):
    """The shipped weights (the node's default), not a network of random weights, whose engine
    no node would look up."""
    from allweather_ros.pipeline import load_model
    from allweather_ros.runtime.engine_cache import ShapeProfile
    from allweather_ros.runtime.export import model_digest

    assert main(["build-engine", "--cache-dir", str(tmp_path)]) == 0
    assert engine_builds[0] == {"digest": model_digest(load_model("")), "precision": "fp16",
                                "profile": ShapeProfile.for_working_side(640),
                                "engine_dir": str(tmp_path)}


def test_build_engine_reads_the_nodes_parameters_file(engine_builds, tmp_path, tiny_model,
                                                      capsys):
    """--params: the engine a node with that file looks up (auto runs TensorRT at fp32);
    flags still win; a backend without an engine is refused."""
    from allweather_ros.model.weights import save_weights
    from allweather_ros.runtime.engine_cache import ShapeProfile
    from allweather_ros.runtime.export import model_digest

    tiny_weights = save_weights(tiny_model, tmp_path / "tiny.safetensors")
    params = tmp_path / "restore.yaml"
    params.write_text("/**/restore_node:\n  ros__parameters:\n    backend: auto\n"
                      f"    weights: {tiny_weights}\n    processing_max_side: 320\n"
                      f"    cache_dir: {tmp_path / 'cache'}\n")
    assert main(["build-engine", "--params", str(params)]) == 0
    first = engine_builds[-1]
    assert first["digest"] == model_digest(tiny_model)
    assert first["precision"] == "fp32" and first["engine_dir"] == str(tmp_path / "cache")
    assert first["profile"] == ShapeProfile.for_working_side(320)
    assert main(["build-engine", "--params", str(params), "--precision", "fp16",
                 "--processing-max-side", "480"]) == 0
    assert engine_builds[-1]["precision"] == "fp16" and engine_builds[-1]["digest"] == \
        first["digest"]
    assert engine_builds[-1]["profile"] == ShapeProfile.for_working_side(480)
    params.write_text("/**/restore_node:\n  ros__parameters:\n    backend: onnxruntime\n")
    assert main(["build-engine", "--params", str(params)]) == 2
    assert "uses no TensorRT engine" in capsys.readouterr().err


def test_build_engine_builds_the_network_without_its_frame_gate_where_the_node_runs_it(
        engine_builds, tmp_path):
    """frame_gate false (parameters file or flag): the engine of the weights without their gate,
    the one such a node looks up."""
    from allweather_ros.pipeline import PipelineConfig, load_model, restorer_weights
    from allweather_ros.runtime.export import model_digest

    cache = tmp_path / "cache"
    params = tmp_path / "restore.yaml"
    params.write_text("/**/restore_node:\n  ros__parameters:\n    frame_gate: false\n"
                      f"    cache_dir: {cache}\n")
    assert main(["build-engine", "--params", str(params)]) == 0
    ungated = load_model(str(restorer_weights(PipelineConfig(frame_gate=False,
                                                             cache_dir=str(cache)))))
    assert ungated.frame_gate is None
    assert engine_builds[-1]["digest"] == model_digest(ungated)
    assert main(["build-engine", "--params", str(params), "--frame-gate", "true"]) == 0
    assert engine_builds[-1]["digest"] == model_digest(load_model(""))


def test_build_engine_sizes_belong_to_full_resolution(tmp_path, capsys):
    assert main(["build-engine", "--size", "1280x720", "--cache-dir", str(tmp_path)]) == 2
    assert "--size is for --processing-max-side 0" in capsys.readouterr().err
