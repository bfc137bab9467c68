"""`prior.estimator_weights`: a user's own built-in estimator (fine-tuned or calibrated on their
camera's frames) reaches every place the shipped one is read: the CLI, the pipeline on torch
and torch-free, and the VLM's fallback; a file that is not there is refused by name."""
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from allweather_ros.cli import main
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.network_io import file_sha256, read_metadata
from allweather_ros.pipeline import build_pipeline, prior_providers
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hazy_estimator(tmp_path_factory):
    """The shipped estimator with its haze calibration shifted so far that it says haze of
    anything: what a user's own calibration looks like to the code, with an unmissable effect."""
    metadata = {k: json.dumps(v) for k, v in read_metadata(SHIPPED_WEIGHTS).items()}
    calibration = json.loads(metadata["calibration"])
    calibration["shift"][-1] = 50.0  # haze is the last type
    metadata["calibration"] = json.dumps(calibration)
    out = tmp_path_factory.mktemp("estimator") / "hazy.safetensors"
    save_file(load_file(SHIPPED_WEIGHTS), str(out), metadata=metadata)
    return out


@pytest.fixture(scope="module")
def clean_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "clean.png"
    photo = cv2.resize(skimage_scenes()[0].load(), (160, 120), interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    return path


def _haze_label(capsys, *args) -> float:
    assert main(["describe", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["labels"]["haze"]


def test_describe_reads_with_the_estimator_it_is_given(capsys, hazy_estimator, clean_photo):
    shipped = _haze_label(capsys, str(clean_photo))
    own = _haze_label(capsys, str(clean_photo), "--estimator-weights", str(hazy_estimator))
    assert shipped < 0.5 < 0.99 < own


def test_a_missing_estimator_file_is_refused_by_name(capsys, clean_photo, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["describe", str(clean_photo), "--estimator-weights",
              str(tmp_path / "nope.safetensors")])
    assert exit_.value.code == 2
    assert "prior.estimator_weights takes empty or an existing .safetensors file" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_pipeline_describes_with_the_configured_estimator(pipeline_config, hazy_estimator,
                                                              backend):
    rgb = np.random.default_rng(0).random((96, 128, 3), dtype=np.float32)
    said = {}
    for name, weights in (("shipped", ""), ("own", str(hazy_estimator))):
        config = replace(pipeline_config, provider="builtin", backend=backend,
                         estimator_weights=weights)
        pipeline = build_pipeline(config, asynchronous=False)
        try:
            said[name] = pipeline.provider.describe(rgb).labels["haze"]
        finally:
            pipeline.close()
    assert said["own"] > 0.99 and said["own"] > said["shipped"]


def test_the_pipeline_names_the_weights_it_runs_and_follows_a_new_estimator(
        pipeline_config, hazy_estimator):
    """What diagnostics and bag reports say runs: each file with the start of its sha256."""
    def named(path):
        return f"{path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]})"

    pipeline = build_pipeline(replace(pipeline_config, provider="builtin"), asynchronous=False)
    try:
        weights = pipeline.describe()["weights"]
        assert weights == {"restorer_weights": named(Path(pipeline_config.weights)),
                           "estimator_weights": named(SHIPPED_WEIGHTS)}
        pipeline.reconfigure(estimator_weights=str(hazy_estimator))
        assert pipeline.describe()["weights"]["estimator_weights"] == named(hazy_estimator)
        pipeline.reconfigure(provider="fixed", fixed_text="light rain")
        assert set(pipeline.describe()["weights"]) == {"restorer_weights"}
    finally:
        pipeline.close()


def test_a_weights_file_replaced_in_place_is_hashed_again(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"first")
    first = file_sha256(path)
    path.write_bytes(b"second, longer")
    assert first == hashlib.sha256(b"first").hexdigest()
    assert file_sha256(path) == hashlib.sha256(b"second, longer").hexdigest()


class _StubVLM:
    name = "vlm:stub"

    def __init__(self, *args, **kwargs):
        pass


def test_the_vlm_fallback_and_rain_check_are_the_configured_estimator(
        pipeline_config, hazy_estimator, monkeypatch):
    """A VLM that fails hands over to the built-in estimator, and a VLM's rain word is checked
    by it (prior.vlm_rain_check): the user's estimator, not the shipped; unchecked on request."""
    import allweather_ros.prior.vlm as vlm

    monkeypatch.setattr(vlm, "VLMPrior", _StubVLM)
    config = replace(pipeline_config, provider="vlm", vlm_model="any",
                     estimator_weights=str(hazy_estimator))
    primary, fallback = prior_providers(config, None)
    assert fallback.net is not None
    assert fallback.calibration.shift[-1] == 50.0
    assert isinstance(primary.provider, _StubVLM) and primary.name == "vlm:stub"
    assert primary.estimator is fallback  # one estimator loaded, not two
    unchecked, _ = prior_providers(replace(config, vlm_rain_check=False), None)
    assert isinstance(unchecked, _StubVLM)


def test_estimator_training_takes_your_scenes_and_keeps_the_inits_calibration(
        tmp_path, monkeypatch, capsys):
    """`--scenes` puts a camera's own clean frames beside the shipped photos; from `--init`
    the new file keeps the init's calibration (tiled reading included) rather than none."""
    import allweather_ros.training.estimator as estimator_training

    frames = tmp_path / "camera"
    frames.mkdir()
    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    for i in range(3):
        assert cv2.imwrite(str(frames / f"frame{i}.png"), rgb)
    seen = {}

    def no_training(config, scenes, out=None, resume=True, init=None):
        from allweather_ros.prior.estimator_net import load_estimator

        seen["scenes"] = [s.name for s in scenes]
        return load_estimator(init), [0.5]

    monkeypatch.setattr(estimator_training, "train_estimator", no_training)
    monkeypatch.setattr(estimator_training, "held_out_metrics", lambda *args: {"test": {
        "per_type": {}}})
    out = tmp_path / "mine.safetensors"
    assert estimator_training.main(["--init", str(SHIPPED_WEIGHTS), "--scenes", str(frames),
                                    "--steps", "1", "--out", str(out)]) == 0
    assert {"camera/frame0.png", "camera/frame1.png", "camera/frame2.png"} <= set(seen["scenes"])
    assert len(seen["scenes"]) > 3  # the shipped photos too
    written = read_metadata(out)
    assert written["calibration"] == read_metadata(SHIPPED_WEIGHTS)["calibration"]
    assert written["training"]["scenes"] == [str(frames)]
    assert "refit it on labelled frames" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_:
        estimator_training.main(["--scenes", str(tmp_path / "nowhere"), "--out", str(out)])
    assert exit_.value.code == 2
    assert f"--scenes: no such folder or video: {tmp_path / 'nowhere'}" in (
        capsys.readouterr().err)


def test_weights_under_the_home_folder_load_as_the_options_rule_reads_them(
        pipeline_config, hazy_estimator, tmp_path, monkeypatch):
    """The options' rule accepts `~/...` (it checks the expanded path), so loading must expand
    it too, for the restorer's weights and the estimator's alike."""
    import shutil

    from allweather_ros.options import DEFAULTS, problems

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copy(hazy_estimator, tmp_path / "hazy.safetensors")
    shutil.copy(pipeline_config.weights, tmp_path / "tiny.safetensors")
    values = {**DEFAULTS, "weights": "~/tiny.safetensors",
              "prior.estimator_weights": "~/hazy.safetensors"}
    assert problems(values, ["weights", "prior.estimator_weights"]) == []
    config = replace(pipeline_config, weights="~/tiny.safetensors", provider="builtin",
                     estimator_weights="~/hazy.safetensors")
    pipeline = build_pipeline(config, asynchronous=False)
    try:
        rgb = np.random.default_rng(0).random((96, 128, 3), dtype=np.float32)
        assert pipeline.provider.describe(rgb).labels["haze"] > 0.99
    finally:
        pipeline.close()
