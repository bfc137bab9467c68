"""Files the node reads: engines, weights and the paths its parameters name.

A damaged or foreign engine is rebuilt with a message naming the file and the reason; a
missing, damaged or mismatched checkpoint is refused naming the file; a pickle dressed up as
safetensors is refused without ever being unpickled; path parameters are checked before
anything is loaded.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from conftest import TINY

from allweather_ros.model import LDRNet
from allweather_ros.model.weights import load_weights, save_weights
from allweather_ros.options import DEFAULTS, problems
from allweather_ros.pipeline import PipelineConfig, build_pipeline
from allweather_ros.runtime.engine_cache import EngineCache, EngineKey, ShapeProfile

PACKAGE = Path(__file__).resolve().parent.parent / "allweather_ros"
KEY = EngineKey(gpu_name="NVIDIA Jetson Orin NX", compute_capability="8.7", sm_count=8,
                trt_version="10.3.0", onnx_sha256="ef" * 32, precision="fp16",
                profile=ShapeProfile.from_sizes([(640, 480)]))



class Plans:
    """Builds `fresh`; deserializes only `fresh` (anything else is 'another GPU's plan')."""

    def __init__(self):
        self.built = 0

    def build(self):
        self.built += 1
        return b"fresh plan"

    def deserialize(self, data):
        if data != b"fresh plan":
            raise RuntimeError("Serialization assertion plan.magic failed (built for sm_86)")
        return data


# -- engines ----------------------------------------------------------------------------------

def test_corrupt_engine_file_is_rebuilt_naming_the_file_and_the_reason(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    path = cache.store(KEY, b"fresh plan", 1.0)
    path.write_bytes(b"fresh PLAN")  # same size: only the hash can tell
    plans = Plans()
    with caplog.at_level(logging.WARNING, "allweather_ros.runtime.engine_cache"):
        assert cache.get_or_build(KEY, plans.build, plans.deserialize) == b"fresh plan"
    assert plans.built == 1 and path.read_bytes() == b"fresh plan"
    assert f"engine {path.name} does not match its recorded sha256; rebuilding" in caplog.text


def test_engine_from_another_gpu_or_tensorrt_is_rebuilt_naming_the_file_and_reason(
        tmp_path, caplog):
    cache = EngineCache(tmp_path)
    cache.store(KEY, b"plan from an RTX 3090", 1.0)  # same key, but TensorRT refuses the plan
    plans = Plans()
    with caplog.at_level(logging.WARNING, "allweather_ros.runtime.engine_cache"):
        assert cache.get_or_build(KEY, plans.build, plans.deserialize) == b"fresh plan"
    assert plans.built == 1
    line = next(r.getMessage() for r in caplog.records if "failed to load" in r.getMessage())
    assert KEY.stem() in line and "Serialization assertion" in line and "rebuilding" in line


def foreign_sidecar(cache: EngineCache) -> None:
    """An entry under our file name whose sidecar records another TensorRT version, as when
    an engine folder is copied from another machine."""
    cache.store(KEY, b"foreign plan", 1.0)
    meta = json.loads(cache.sidecar_path(KEY).read_text())
    meta["key"]["trt_version"] = "8.6.1"
    cache.sidecar_path(KEY).write_text(json.dumps(meta))


def test_engine_with_a_foreign_sidecar_is_never_loaded_but_rebuilt(tmp_path):
    cache = EngineCache(tmp_path)
    foreign_sidecar(cache)
    plans = Plans()
    assert cache.get_or_build(KEY, plans.build, lambda data: data) == b"fresh plan"
    assert plans.built == 1
    assert json.loads(cache.sidecar_path(KEY).read_text())["key"] == KEY.to_dict()


def test_engine_with_a_foreign_sidecar_is_reported(tmp_path, caplog):
    cache = EngineCache(tmp_path)
    foreign_sidecar(cache)
    plans = Plans()
    with caplog.at_level(logging.INFO, "allweather_ros.runtime.engine_cache"):
        cache.get_or_build(KEY, plans.build, lambda data: data)
    assert any(cache.engine_path(KEY).name in r.getMessage() and "8.6.1" in r.getMessage()
               for r in caplog.records if r.levelno >= logging.WARNING)


# -- weights ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_weights(LDRNet(**TINY), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def test_missing_checkpoint_is_refused_naming_the_file(tmp_path):
    missing = tmp_path / "gone.safetensors"
    with pytest.raises(FileNotFoundError, match=f"weights file {re.escape(str(missing))} does "
                       "not exist"):
        load_weights(missing)


def test_truncated_checkpoint_is_refused_naming_the_file(tiny_file, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_file.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"{re.escape(str(cut))} is not a readable safetensors"):
        load_weights(cut)


def test_checkpoint_missing_tensors_its_config_needs_is_refused_naming_the_file(
        tiny_file, tmp_path):
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial.safetensors"
    tensors = load_file(str(tiny_file))
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    save_file(tensors, str(partial), metadata={"config": json.dumps(LDRNet(**TINY).config)})
    with pytest.raises(ValueError, match=f"{re.escape(str(partial))} does not match its "
                       f"config: missing \\[{re.escape(repr(dropped))}"):
        load_weights(partial)


def test_checkpoint_whose_tensor_shapes_do_not_match_its_config_is_refused(tiny_file, tmp_path):
    from safetensors.torch import load_file, save_file

    other = tmp_path / "mismatch.safetensors"
    config = {**LDRNet(**TINY).config, "width": 16}  # claims a wider network than it holds
    save_file(load_file(str(tiny_file)), str(other), metadata={"config": json.dumps(config)})
    with pytest.raises(ValueError, match=f"{re.escape(str(other))} does not match its config"):
        load_weights(other)


def test_checkpoint_without_a_config_is_refused(tiny_file, tmp_path):
    from safetensors.torch import load_file, save_file

    bare = tmp_path / "bare.safetensors"
    save_file(load_file(str(tiny_file)), str(bare))
    with pytest.raises(ValueError, match="has no model config in its metadata"):
        load_weights(bare)


def test_checkpoint_for_another_prior_width_is_refused_naming_the_file(tiny_file, tmp_path):
    config = PipelineConfig(weights=str(tiny_file), backend="torch", provider="none",
                            cache_dir=str(tmp_path))
    with pytest.raises(ValueError) as refused:
        pipeline = build_pipeline(config, asynchronous=False)
        pipeline.close()
    assert str(tiny_file) in str(refused.value)


class Payload:
    """Unpickling this makes a directory: proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_renamed_safetensors_is_refused_without_unpickling(writer, tmp_path):
    marker = tmp_path / "payload_ran"
    disguised = tmp_path / "weights.safetensors"
    state = {"weight": torch.zeros(2), "payload": Payload(marker)}
    if writer == "pickle":
        disguised.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, disguised)
    with pytest.raises(ValueError, match="is not a readable safetensors file"):
        load_weights(disguised)
    assert not marker.exists()
    if writer == "pickle":  # the payload is live: unpickling it would have left the marker
        pickle.loads(disguised.read_bytes())
        assert marker.is_dir()


def test_the_package_never_unpickles_without_weights_only():
    """Every torch.load in the package passes weights_only=True; no pickle.load(s) at all."""
    offending = []
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text()
        for match in re.finditer(r"torch\.load\((?P<args>[^)]*)\)", text):
            if "weights_only=True" not in match["args"]:
                offending.append(f"{source.name}: {match[0]}")
        offending += [f"{source.name}: {m[0]}" for m in re.finditer(r"pickle\.loads?\(", text)]
    assert not offending, offending


def test_the_vlm_is_never_downloaded_unless_asked(monkeypatch):
    """Without allow_download, transformers is told local_files_only: no network at run time."""
    from allweather_ros.prior import vlm

    seen = {}

    def refuse(source, **kwargs):
        seen.update(kwargs, source=source)
        raise OSError("not in the local cache")

    monkeypatch.setattr("transformers.AutoProcessor.from_pretrained", refuse)
    with pytest.raises(Exception, match="downloads are off"):
        vlm.VLMPrior("someone/uncached-vlm")
    assert seen["local_files_only"] is True and seen["source"] == "someone/uncached-vlm"


# -- path parameters --------------------------------------------------------------------------

def refused(name: str, value) -> list[str]:
    return problems({**DEFAULTS, name: value}, [name])


def test_weights_parameter_must_name_an_existing_safetensors_file(tiny_file, tmp_path):
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"x")
    for value in (str(tmp_path / "missing.safetensors"), str(folder), str(pt)):
        assert refused("weights", value) == [
            f"parameter 'weights' = {value!r} is not allowed: empty or an existing "
            ".safetensors file"]
    assert refused("weights", str(tiny_file)) == [] and refused("weights", "") == []


def test_cache_dir_parameter_must_be_a_writable_folder(tmp_path):
    a_file = tmp_path / "cache_is_a_file"
    a_file.write_text("")
    for value in (str(a_file), str(a_file / "below_a_file")):
        found = refused("cache_dir", value)
        assert found and "'cache_dir'" in found[0] and repr(value) in found[0], value
    assert refused("cache_dir", str(tmp_path / "new" / "cache")) == []
