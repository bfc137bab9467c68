"""tools/gpu_train.py, run here on the CPU as it would run on a lent GPU machine: the pack holds
only training photos, encodes descriptions as the bundled encoder does, and resumes training."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import TINY

from allweather_ros.data.sources import DEBIAN_PHOTOS, Scene, split_of
from allweather_ros.prior.text_encoder import TextEncoder
from allweather_ros.training.checkpoint import checkpoint_progress
from allweather_ros.training.loop import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from gpu_train import half_copy, unpack_text_encoder  # noqa: E402


def _photos(root: Path) -> dict[str, list[str]]:
    """Two training and one validation photo where the fetch script would put them."""
    chosen = {"train": [], "val": []}
    for package, relative in DEBIAN_PHOTOS:
        name = f"{package}/{relative}"
        split = split_of(Scene(name, ""))
        if split in chosen and len(chosen[split]) < (2 if split == "train" else 1):
            chosen[split].append(name)
            path = root / package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(len(chosen[split]))
            cv2.imwrite(str(path.with_suffix(".png")), rng.integers(0, 255, (90, 120, 3), np.uint8))
            path.with_suffix(".png").rename(path)
    return chosen


def _run(*args, env):
    done = subprocess.run([sys.executable, "tools/gpu_train.py", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu")
    photos = _photos(tmp / "scenes")
    model = tmp / "tiny.yaml"
    model.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                     for k, v in {**TINY, "prior_dim": 384}.items()}))
    recipe = {"model": str(model), "crop": 32, "batch_size": 2, "workers": 0, "threads": 1,
              "steps": 2, "checkpoint_every": 2, "out": str(tmp / "cpu")}
    train(TrainConfig(**recipe))
    (tmp / "train.yaml").write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALLWEATHER_SCENES": str(tmp / "scenes"),
           "OMP_NUM_THREADS": "1"}
    printed = _run("pack", tmp / "pack", "--checkpoint", tmp / "cpu" / "last.safetensors",
                   env=env)
    return tmp, photos, env, printed


def test_the_pack_holds_the_training_photos_and_the_checkpoint_within_the_budget(packed):
    tmp, photos, _, printed = packed
    pack = tmp / "pack"
    assert sorted(str(p.relative_to(pack / "scenes")) for p in (pack / "scenes").rglob("*")
                  if p.is_file()) == sorted(photos["train"])
    assert json.loads((pack / "manifest.json").read_text())["runs"] == {"cpu": 2}
    assert "of 64 MiB" in printed
    assert (pack / "text_encoder" / "model.fp16.safetensors.xz").stat().st_size < 30 * 2 ** 20


def test_packing_into_a_folder_of_other_files_is_refused_and_leaves_them(packed, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    done = subprocess.run([sys.executable, "tools/gpu_train.py", "pack", str(tmp_path)],
                          cwd=ROOT, env=packed[2], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "not an earlier pack" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_the_packed_encoder_encodes_descriptions_as_the_bundled_one(packed, tmp_path):
    encoder = unpack_text_encoder(packed[0] / "pack", tmp_path)
    text = ("The image is degraded by heavy rain streaks in the upper part of the frame and "
            "slight haze.")
    ours, bundled = encoder.encode(text).numpy(), TextEncoder().encode(text).numpy()
    assert ours.shape == bundled.shape
    assert np.linalg.norm(ours - bundled) / np.linalg.norm(bundled) < 1e-2
    with pytest.raises(ValueError, match="lacks word pieces"):
        encoder.encode("Thick fog over a motorway")


def test_training_on_the_pack_resumes_its_checkpoint(packed):
    tmp, _, env, _ = packed
    printed = _run("train", tmp / "pack", "--run", "cpu", "--out", tmp / "gpu", "--config",
                   tmp / "train.yaml", "--steps", 3, "--workers", 0, env=env)
    assert checkpoint_progress(tmp / "gpu" / "last.safetensors")["step"] == 5
    assert (tmp / "gpu" / "weights.safetensors").is_file()
    assert "steps: 5, restart_step: 2" in printed


def test_a_fresh_run_trains_the_yaml_network_from_its_first_step_into_an_empty_folder(packed):
    tmp, _, env, _ = packed
    args = ("train", tmp / "pack", "--fresh", "--run", "new", "--out", tmp / "fresh",
            "--config", tmp / "train.yaml", "--steps", 3, "--workers", 0)
    printed = _run(*args, env=env)
    assert checkpoint_progress(tmp / "fresh" / "last.safetensors")["step"] == 3
    assert "steps: 3, restart_step: 0" in printed
    again = subprocess.run([sys.executable, "tools/gpu_train.py", *map(str, args)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "holds a checkpoint already" in again.stderr
    assert checkpoint_progress(tmp / "fresh" / "last.safetensors")["step"] == 3


def test_a_half_copy_loads_as_the_same_network(packed):
    """What comes back from the device machine when the weights are too large (base: 23 MB)."""
    import torch

    from allweather_ros.model.weights import load_weights, read_metadata

    weights = packed[0] / "cpu" / "weights.safetensors"
    copy = half_copy(weights)
    assert copy.name == "weights.fp16.safetensors"
    assert read_metadata(copy) == read_metadata(weights)
    assert copy.stat().st_size < 0.6 * weights.stat().st_size
    ours, theirs = load_weights(copy).state_dict(), load_weights(weights).state_dict()
    for name, tensor in theirs.items():
        torch.testing.assert_close(ours[name], tensor, rtol=1e-3, atol=1e-4)


def test_an_estimator_leg_on_the_pack_is_saved_though_it_holds_no_held_out_photos(packed):
    """The pack carries training photos only: the leg must still write its weights (held-out
    metrics are skipped, said so), start from the shipped estimator and keep its calibration."""
    import torch
    from safetensors.torch import load_file

    from allweather_ros.model.weights import read_metadata
    from allweather_ros.prior.builtin import SHIPPED_WEIGHTS

    tmp, _, env, _ = packed
    out = tmp / "estimator" / "e.safetensors"
    printed = _run("estimator", tmp / "pack", "--out", out, "--steps", 2, "--batch", 2,
                   "--workers", 0, "--threads", 1, "--seed", 5, env=env)
    assert "held-out metrics skipped" in printed
    meta, shipped = read_metadata(out), read_metadata(SHIPPED_WEIGHTS)
    assert meta["calibration"] == shipped["calibration"]
    assert meta["metrics"] is None and meta["training"]["steps"] == 2
    assert meta["training"]["init"] == str(SHIPPED_WEIGHTS)
    ours, start = load_file(out), load_file(SHIPPED_WEIGHTS)
    assert ours.keys() == start.keys()
    assert any(not torch.equal(ours[k], start[k]) for k in start)  # trained, not copied
    assert not out.with_suffix(".train.pt").exists()
