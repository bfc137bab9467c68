"""Type calibration: fitted per type, pulled towards the identity, carried in the weights file."""
import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from allweather_ros.description import TYPES
from allweather_ros.model.weights import read_metadata
from allweather_ros.prior.batch import prior_record
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, TILED_TYPES, BuiltinEstimator
from allweather_ros.prior.calibration import (
    TIER_AXIS,
    TypeCalibration,
    choose_floor,
    fit,
    fit_severity,
    logits_of,
)
from allweather_ros.prior.estimator_input import tiles


def test_fit_recovers_an_overconfident_and_biased_type():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0.0, 2.0, (4000, len(TYPES)))
    present = rng.random(true_logit.shape) < 1 / (1 + np.exp(-true_logit))
    stated = true_logit.copy()
    stated[:, 0] = 3.0 * true_logit[:, 0] + 2.0  # rain: overconfident and biased to "present"
    calibration = fit(stated, present)
    assert calibration.scale[0] == pytest.approx(1 / 3, abs=0.05)
    assert calibration.shift[0] == pytest.approx(-2 / 3, abs=0.1)
    for t in range(1, len(TYPES)):  # already calibrated: left near the identity
        assert calibration.scale[t] == pytest.approx(1.0, abs=0.1)
        assert calibration.shift[t] == pytest.approx(0.0, abs=0.1)
    p = calibration.probabilities(stated)
    assert np.abs(p[:, 0] - 1 / (1 + np.exp(-true_logit[:, 0]))).max() < 0.1


def test_fit_severity_recovers_a_scale_that_leans_low_and_leaves_unlabelled_types_alone():
    rng = np.random.default_rng(3)
    n = 3000
    true = rng.normal(0.0, 1.5, (n, len(TYPES), 3))
    p = np.exp(true) / np.exp(true).sum(-1, keepdims=True)
    tiers = np.array([[rng.choice(3, p=p[i, t]) for t in range(len(TYPES))] for i in range(n)])
    tiers[:, 3] = -1  # haze: no severity judged anywhere
    stated = true.copy()
    stated[:, 0] -= 1.2 * TIER_AXIS  # rain: the heads lean towards "slight"
    shifts = fit_severity(stated, tiers)
    assert shifts[0] == pytest.approx(1.2, abs=0.15)
    assert all(abs(s) < 0.15 for s in shifts[1:3]) and shifts[3] == 0.0
    calibration = TypeCalibration(severity_shift=shifts)
    fixed = calibration.severities(stated)
    assert fixed.sum(-1) == pytest.approx(1.0, abs=1e-5)
    assert fixed[:, 0].mean(0) == pytest.approx(p[:, 0].mean(0), abs=0.03)
    assert TypeCalibration.from_json(calibration.to_json()) == calibration


def test_few_labelled_frames_move_the_calibration_little():
    few = fit(np.array([[4.0] * 4, [3.0] * 4]), np.zeros((2, 4), bool))
    assert all(0.5 < s <= 1.0 for s in few.scale) and all(-2.5 < b < 0 for b in few.shift)


def test_identity_without_stored_calibration_and_probabilities_invert_logits():
    p = np.array([0.1, 0.5, 0.9, 0.99])
    assert TypeCalibration().probabilities(logits_of(p)) == pytest.approx(p, abs=1e-6)
    assert TypeCalibration.from_json(None) == TypeCalibration()
    with pytest.raises(ValueError, match="types"):
        TypeCalibration.from_json({"types": ["fog"], "scale": [1], "shift": [0]})


def test_the_estimator_applies_the_calibration_its_weights_carry(tmp_path):
    frame = np.random.default_rng(1).random((96, 128, 3)).astype(np.float32)
    raw = BuiltinEstimator(calibrated=False).estimate(frame)[0]
    metadata = {k: json.dumps(v) for k, v in read_metadata(SHIPPED_WEIGHTS).items()}
    halve = TypeCalibration((0.5,) * len(TYPES), (-1.0,) * len(TYPES))
    metadata["calibration"] = json.dumps(halve.to_json())
    path = tmp_path / "calibrated.safetensors"
    save_file(load_file(str(SHIPPED_WEIGHTS)), str(path), metadata=metadata)
    calibrated = BuiltinEstimator(path).estimate(frame)[0]
    assert calibrated == pytest.approx(halve.probabilities(logits_of(raw)), abs=1e-4)
    assert BuiltinEstimator(path, calibrated=False).estimate(frame)[0] == pytest.approx(raw)


def test_the_estimator_shifts_its_severities_as_its_weights_say(tmp_path):
    frame = np.random.default_rng(4).random((96, 128, 3)).astype(np.float32)
    raw = BuiltinEstimator(calibrated=False).estimate(frame)[1]
    metadata = {k: json.dumps(v) for k, v in read_metadata(SHIPPED_WEIGHTS).items()}
    heavier = TypeCalibration(severity_shift=(2.0,) * len(TYPES))
    metadata["calibration"] = json.dumps(heavier.to_json())
    path = tmp_path / "heavier.safetensors"
    save_file(load_file(str(SHIPPED_WEIGHTS)), str(path), metadata=metadata)
    shifted = BuiltinEstimator(path).estimate(frame)[1]
    assert shifted == pytest.approx(heavier.severities(np.log(raw)), abs=1e-4)
    assert (shifted[:, 2] > raw[:, 2]).all() and (shifted[:, 0] < raw[:, 0]).all()


_PHRASE = {"rain": "rain streaks", "raindrop": "raindrops on the lens", "snow": "falling snow",
           "haze": "haze"}


def test_the_floor_keeps_the_most_probable_weather_of_an_unsure_frame(tmp_path):
    frame = np.random.default_rng(2).random((64, 64, 3)).astype(np.float32)
    metadata = {k: json.dumps(v) for k, v in read_metadata(SHIPPED_WEIGHTS).items()}
    quiet = TypeCalibration((0.1,) * len(TYPES), (-3.0,) * len(TYPES))  # every type below 0.5
    paths = {}
    for name, floor in (("never", 1.0), ("low", 0.01)):
        metadata["calibration"] = json.dumps(replace(quiet, floor=floor).to_json())
        paths[name] = tmp_path / f"{name}.safetensors"
        save_file(load_file(str(SHIPPED_WEIGHTS)), str(paths[name]), metadata=metadata)
    clear = BuiltinEstimator(paths["never"]).describe(frame)
    said = BuiltinEstimator(paths["low"]).describe(frame)
    assert clear.text.startswith("The image is clear")
    top = max(said.labels, key=said.labels.get)
    assert said.labels[top] < 0.5 and f"{_PHRASE[top]}" in said.text
    assert prior_record(said)["types"] == [top]  # the record says what the restorer is told
    assert prior_record(clear)["types"] == []


def test_choose_floor_finds_the_share_asked_for():
    tops = np.linspace(0.0, 1.0, 101)
    floor = choose_floor(tops, found=0.85)
    assert np.mean(tops >= floor) == pytest.approx(0.85, abs=0.011)


def test_tiles_cover_a_large_frame_and_read_a_small_one_in_squares():
    index = np.arange(480 * 640, dtype=np.float64).reshape(480, 640)
    frame = np.repeat(index[..., None], 3, axis=2)  # each pixel holds its own index
    views = tiles(frame, 192, max_tiles=64)
    assert len(views) == 3 * 4 and all(v.shape == (192, 192, 3) for v in views)
    covered = np.zeros(frame.shape[:2], bool)
    for v in views:
        y, x = divmod(int(v[0, 0, 0]), 640)
        covered[y:y + 192, x:x + 192] = True
    assert covered.all()
    assert len(tiles(frame, 192, max_tiles=5)) == 5
    for shape, side, count in (((200, 300), 192, 4), ((150, 400), 150, 3), ((120, 120), 120, 1)):
        views = tiles(np.zeros((*shape, 3), np.float32), 192, max_tiles=64)
        assert [v.shape for v in views] == [(side, side, 3)] * count  # squares, none squeezed


class _WidthNet:
    """A stand-in estimator network whose every type logit, and every type's logit of the
    heaviest tier, is its input's width / 100."""

    input_side, max_aspect = 128, 2.0

    def __init__(self):
        self.widths = []

    def __call__(self, frame):
        self.widths.append(frame.shape[-1])
        severity = np.zeros((len(TYPES), 3))
        severity[:, 2] = frame.shape[-1] / 100
        return np.full(len(TYPES), frame.shape[-1] / 100), severity


def _tiled_weights(tmp_path):
    """The shipped weights with an identity calibration fitted for tiles of 192 pixels."""
    metadata = {k: json.dumps(v) for k, v in read_metadata(SHIPPED_WEIGHTS).items()}
    metadata["calibration"] = json.dumps(TypeCalibration(tile_side=192).to_json())
    path = tmp_path / "tiled.safetensors"
    save_file(load_file(str(SHIPPED_WEIGHTS)), str(path), metadata=metadata)
    assert TypeCalibration.from_json(json.loads(metadata["calibration"])).tile_side == 192
    return path


def test_the_particle_weathers_and_every_severity_are_read_in_the_tiles_fitted_for(tmp_path):
    path = _tiled_weights(tmp_path)
    net = _WidthNet()
    estimator = BuiltinEstimator(path, load_net=lambda _: net)
    p, severity = estimator.estimate(np.zeros((480, 640, 3), np.float32))
    assert net.widths == [171] + [128] * 12  # the whole frame, then 12 tiles
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in TILED_TYPES:
        assert p[TYPES.index(t)] == pytest.approx(sigmoid(1.28), abs=1e-6)
    assert p[TYPES.index("haze")] == pytest.approx(sigmoid(1.71), abs=1e-6)  # the whole frame
    tiled = np.exp([0, 0, 1.28]) / np.exp([0, 0, 1.28]).sum()
    for t in TYPES:  # every severity from the tiles, haze's too
        assert severity[TYPES.index(t)] == pytest.approx(tiled, abs=1e-6)
    net.widths.clear()
    BuiltinEstimator(path, load_net=lambda _: net, tile_side=0).estimate(
        np.zeros((480, 640, 3), np.float32))
    assert net.widths == [171]  # tile_side 0: the whole frame only


def test_a_wide_low_frame_is_read_in_squares_besides_whole(tmp_path):
    """A 640x235 frame (a driving camera's band) whole is squeezed to the network's aspect cap
    (256x128); its particle weathers come from squares of 192 pixels, each seen at 128."""
    net = _WidthNet()
    estimator = BuiltinEstimator(_tiled_weights(tmp_path), load_net=lambda _: net)
    p, _ = estimator.estimate(np.zeros((235, 640, 3), np.float32))
    assert net.widths == [256] + [128] * 8
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert p[TYPES.index("rain")] == pytest.approx(sigmoid(1.28), abs=1e-6)
    assert p[TYPES.index("haze")] == pytest.approx(sigmoid(2.56), abs=1e-6)
