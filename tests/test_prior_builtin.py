"""The built-in estimator: shapes at any frame size, the prior it writes, training, weights I/O,
the describe command, and (with the shipped weights) that it tells heavy haze from a clear view."""
import json
import re
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from allweather_ros.cli import main
from allweather_ros.data.datasets import labels
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import (
    CLEAN_TEXT,
    PLACED_PROBABILITY,
    SEVERITIES,
    TYPES,
    WHOLE_FRAME,
    Degradation,
    describe,
)
from allweather_ros.model.weights import read_metadata, save_weights
from allweather_ros.prior.builtin import (
    MISSTATEMENT_COST,
    MISSTATEMENT_COST_BY_TYPE,
    PLACED_FROM,
    SAID_FROM,
    SHIPPED_WEIGHTS,
    BuiltinEstimator,
    severity_choice,
)
from allweather_ros.prior.calibration import TypeCalibration
from allweather_ros.prior.estimator_net import DegradationEstimator, load_estimator, widened
from allweather_ros.training import estimator as estimator_training
from allweather_ros.training.estimator import (
    EstimatorTrainConfig,
    estimator_loss,
    evaluate_estimator,
    train_estimator,
    training_data,
)

SMALL = dict(widths=(8, 16), input_side=32, hidden=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def _estimator(path, type_bias, severity_bias, calibration: TypeCalibration | None = None
               ) -> BuiltinEstimator:
    """A provider whose output ignores the frame: zero last layer, chosen biases."""
    model = DegradationEstimator(**SMALL)
    with torch.no_grad():
        last = model.head[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([*type_bias, *np.ravel(severity_bias)], dtype=torch.float32))
    save_weights(model, path, extra=calibration and {"calibration": calibration.to_json()})
    return BuiltinEstimator(weights=path)


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 480, 641), (1, 3, 129, 1000),
                                   (1, 3, 7, 5)])
def test_estimator_accepts_any_frame_size(shape):
    torch.manual_seed(0)
    model = DegradationEstimator().eval()
    with torch.no_grad():
        types, severity = model(torch.rand(shape))
    assert types.shape == (shape[0], 4) and severity.shape == (shape[0], 4, 3)
    assert torch.isfinite(types).all() and torch.isfinite(severity).all()


def test_input_size_keeps_aspect_up_to_the_cap():
    model = DegradationEstimator(input_side=128, max_aspect=2.0)
    assert model.input_size(480, 640) == (128, 171)
    assert model.input_size(640, 480) == (171, 128)
    assert model.input_size(100, 1000) == (128, 256)


def test_describe_text_matches_labels(tmp_path):
    severities = np.zeros((4, 3))
    severities[0, 2] = 5.0  # rain: heavy
    severities[3, 0] = 5.0  # haze: slight
    provider = _estimator(tmp_path / "e.safetensors", [3.0, -3.0, -3.0, 3.0], severities)
    prior = provider.describe(np.random.default_rng(0).random((90, 70, 3), dtype=np.float32))
    assert set(prior.labels) == set(TYPES)
    assert prior.labels["rain"] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-5)
    assert prior.text == describe([Degradation("rain", "heavy", WHOLE_FRAME),
                                   Degradation("haze", "slight", WHOLE_FRAME)])
    assert prior.severity == "heavy" and prior.provider == "builtin"
    assert prior.tokens is None and 0.8 < prior.confidence <= 1.0


@pytest.mark.parametrize("distribution, tier", [
    ([0.0, 0.0, 1.0], "heavy"), ([1.0, 0.0, 0.0], "slight"), ([0.0, 1.0, 0.0], "moderate"),
    ([0.1, 0.4, 0.5], "moderate"),  # heavy is likelier, but overstating costs more
    ([0.4, 0.6, 0.0], "slight"),
    ([0.05, 0.1, 0.85], "heavy"),
])
def test_severity_leans_low_because_overstating_costs_more(distribution, tier):
    assert MISSTATEMENT_COST[+1] > MISSTATEMENT_COST[-1]
    assert SEVERITIES[severity_choice(np.array(distribution))] == tier


@pytest.mark.parametrize("distribution, tier", [
    ([0.1, 0.4, 0.5], "heavy"),  # a tier too high costs rain little: the likelier tier is said
    ([0.3, 0.5, 0.2], "moderate"),
    ([0.9, 0.1, 0.0], "slight"),
    ([0.6, 0.1, 0.3], "moderate"),  # "heavy" on slight rain still costs
])
def test_rain_is_priced_apart(distribution, tier):
    prices = MISSTATEMENT_COST_BY_TYPE["rain"]
    assert prices[+1] < prices[-1] < MISSTATEMENT_COST[+1]
    assert SEVERITIES[severity_choice(np.array(distribution), "rain")] == tier


def test_described_severity_is_the_cost_aware_choice(tmp_path):
    severities = np.log(np.array([[0.1, 0.4, 0.5]] * 4))  # softmax gives back these
    provider = _estimator(tmp_path / "e.safetensors", [3.0, -3.0, 3.0, -3.0], severities)
    prior = provider.describe(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
    assert prior.text == describe([Degradation("rain", "heavy", WHOLE_FRAME),
                                   Degradation("snow", "moderate", WHOLE_FRAME)])
    assert prior.severity == "heavy"


def test_only_a_type_the_estimator_is_sure_of_is_placed(tmp_path):
    # sigmoid(3) = 0.95 reaches PLACED_PROBABILITY, sigmoid(0.5) = 0.62 is said but unplaced
    assert 1 / (1 + np.exp(-0.5)) < PLACED_PROBABILITY < 1 / (1 + np.exp(-3.0))
    severities = np.log(np.array([[0.9, 0.05, 0.05]] * 4))
    provider = _estimator(tmp_path / "e.safetensors", [-3.0, -3.0, 3.0, 0.5], severities)
    prior = provider.describe(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
    assert prior.text == describe([Degradation("snow", "slight", WHOLE_FRAME),
                                   Degradation("haze", "slight")])


def test_rain_is_placed_across_the_whole_frame_from_a_lower_probability(tmp_path):
    """Falling rain fills the view: at 0.62 rain is placed, another type is not."""
    assert PLACED_FROM["rain"] < 1 / (1 + np.exp(-0.5)) < PLACED_FROM["snow"]
    severities = np.log(np.array([[0.9, 0.05, 0.05]] * 4))
    provider = _estimator(tmp_path / "e.safetensors", [0.5, -3.0, 0.5, -3.0], severities)
    prior = provider.describe(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
    assert prior.text == describe([Degradation("rain", "slight", WHOLE_FRAME),
                                   Degradation("snow", "slight")])


@pytest.mark.parametrize(("likeliest", "floor", "said"), [
    ("rain", 0.4, True),  # rain from its own floor, below the fitted one
    ("snow", 0.4, False),  # another type from the floor only
    ("rain", 1.0, False),  # no floor fitted: nothing said below the threshold
])
def test_rain_is_said_from_a_lower_floor_than_other_types(likeliest, floor, said, tmp_path):
    p = 0.3
    assert SAID_FROM["rain"] < p < 0.4 <= SAID_FROM["snow"]
    biases = [-3.0] * len(TYPES)
    biases[TYPES.index(likeliest)] = float(np.log(p / (1 - p)))
    severities = np.log(np.array([[0.9, 0.05, 0.05]] * 4))
    provider = _estimator(tmp_path / "e.safetensors", biases, severities,
                          TypeCalibration(floor=floor))
    prior = provider.describe(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
    assert prior.labels[likeliest] == pytest.approx(p, abs=1e-3)
    assert prior.text == (describe([Degradation(likeliest, "slight")]) if said else CLEAN_TEXT)


def test_describe_clean_frame(tmp_path):
    provider = _estimator(tmp_path / "e.safetensors", [-4.0] * 4, np.zeros((4, 3)))
    prior = provider.describe(np.zeros((64, 64, 3), np.float32))
    assert prior.text == CLEAN_TEXT and prior.severity == "none"
    assert all(p < 0.5 for p in prior.labels.values())


def test_encoder_gives_tokens(tmp_path):
    class Encoder:
        def encode(self, text):
            return torch.ones(len(text.split()), 5)

    provider = _estimator(tmp_path / "e.safetensors", [-4.0] * 4, np.zeros((4, 3)))
    provider.encoder = Encoder()
    prior = provider.describe(np.zeros((32, 32, 3), np.float32))
    assert prior.tokens.shape == (len(CLEAN_TEXT.split()), 5)


def test_confidence_formula(tmp_path):
    provider = _estimator(tmp_path / "e.safetensors", [0.0] * 4, np.zeros((4, 3)))
    sure = np.eye(3)[[2, 2, 2, 2]]
    assert provider.confidence(np.array([0.5, 0.0, 0.0, 0.0]), sure) == pytest.approx(0.0)
    assert provider.confidence(np.array([1.0, 0.0, 0.0, 0.0]), sure) == pytest.approx(1.0)
    assert provider.confidence(np.array([0.75, 0.0, 0.0, 0.25]), sure) == pytest.approx(0.5)
    # A certain type at an undecided severity: withheld severity, never the generic prior.
    undecided = np.full((4, 3), 1 / 3)
    assert provider.confidence(np.array([1.0, 0.0, 0.0, 0.0]), undecided) == pytest.approx(0.25)


def test_training_lowers_the_loss():
    """Fitting a fixed handful of synthetic frames: deterministic and quick."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    photo = cv2.resize(skimage_scenes()[0].load(), (64, 64)).astype(np.float32) / 255.0
    recipes = [[], [Degradation("rain", "heavy")], [Degradation("haze", "moderate")],
               [Degradation("snow", "slight"), Degradation("raindrop", "heavy")]] * 2
    samples = [synthesize(photo, rng, r) for r in recipes]
    frames = torch.stack([torch.from_numpy(s.degraded.transpose(2, 0, 1).copy())
                          for s in samples])
    truth = [labels(s.degradations) for s in samples]
    types = torch.stack([t["types"] for t in truth])
    severity = torch.stack([t["severity"] for t in truth])
    model = DegradationEstimator(widths=(8, 16, 32), input_side=48)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        loss = estimator_loss(*model(frames), types, severity)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_train_and_evaluate_end_to_end(tmp_path):
    config = EstimatorTrainConfig(steps=2, batch=2, crop=64, workers=0, checkpoint_every=1)
    out = tmp_path / "new" / "estimator.safetensors"
    model, losses = train_estimator(config, skimage_scenes(), out=out, progress=False)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert out.with_suffix(".train.pt").is_file()
    _, resumed = train_estimator(config, skimage_scenes(), out=out, progress=False)
    assert resumed == losses  # nothing left to do: the checkpoint's losses come back
    metrics = evaluate_estimator(model, [{"degraded": torch.rand(3, 40, 48),
                                          "types": torch.tensor([1.0, 0, 0, 0]),
                                          "severity": torch.tensor([2, -1, -1, -1])}])
    assert set(metrics["per_type"]) == set(TYPES) and metrics["samples"] == 1


def test_type_weights_make_a_type_the_common_single_one():
    even = EstimatorTrainConfig(steps=40, batch=1, crop=48, clean_p=0.0, camera_p=0.0,
                                exposure_p=0.0)
    hazy = replace(even, type_weights={"haze": 50.0})

    def haze_alone(config):
        alone = [f["types"] for f in training_data(config, skimage_scenes())
                 if f["types"].sum() == 1]
        return sum(int(t[TYPES.index("haze")]) for t in alone) / len(alone)

    assert haze_alone(hazy) > 0.8 > 0.5 > haze_alone(even)


@pytest.mark.parametrize(("bad", "said"), [("fog=2", "unknown weather types ['fog']"),
                                            ("haze=lots", "expected TYPE=WEIGHT, got 'haze=lots'")])
def test_bad_type_weights_are_refused_by_name(bad, said, capsys):
    with pytest.raises(SystemExit):
        estimator_training.main(["--type-weights", bad, "--steps", "0"])
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0.5", "nan", "close"])
def test_a_zoom_below_one_is_refused_by_name(bad, capsys):
    with pytest.raises(SystemExit):
        estimator_training.main(["--zoom-p", "0.5", "--max-zoom", bad, "--steps", "0"])
    assert f"expected a zoom of at least 1, got '{bad}'" in capsys.readouterr().err


@pytest.mark.parametrize(("bad", "said"), [
    (["--clean-p", "1.5"], "clean_p must lie in [0, 1), got 1.5"),
    (["--clean-p", "1"], "clean_p must lie in [0, 1), got 1.0"),
    (["--night-p", "-0.1"], "night_p must lie in [0, 1], got -0.1"),
    (["--zoom-p", "nan"], "zoom_p must lie in [0, 1], got nan"),
    (["--steps", "0"], "steps must be >= 1, got 0"),
    (["--lr", "0"], "lr must be > 0, got 0.0"),
])
def test_bad_shares_and_counts_are_refused_before_any_training(bad, said, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training began on a config that should have been refused")

    monkeypatch.setattr(estimator_training, "train_estimator", no_training)
    with pytest.raises(SystemExit):
        estimator_training.main(bad)
    assert said in capsys.readouterr().err


def test_a_bad_share_is_refused_from_python_too():
    with pytest.raises(ValueError, match=re.escape("camera_p must lie in [0, 1], got 2")):
        EstimatorTrainConfig(camera_p=2)


def test_zoomed_training_views_keep_the_crop():
    config = EstimatorTrainConfig(steps=6, batch=1, crop=48, zoom_p=1.0, max_zoom=2.0)
    data = training_data(config, skimage_scenes())
    assert (data.zoom_p, data.max_zoom) == (1.0, 2.0)
    assert all(f["degraded"].shape == (3, 48, 48) for f in data)


def test_a_widened_estimator_computes_the_same_logits():
    torch.manual_seed(0)
    narrow = DegradationEstimator(**SMALL)
    narrow.train()(torch.rand(4, 3, 40, 40))  # running statistics that are not the defaults
    narrow.eval()
    wide = widened(narrow, (12, 24), 40, noise=0.0).eval()
    assert wide.config == {**narrow.config, "widths": [12, 24], "hidden": 40}
    frames = torch.rand(3, 3, 50, 70)
    for ours, theirs in zip(narrow(frames), wide(frames), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    noisy = widened(narrow, (12, 24), 40, noise=0.02).eval()
    assert not torch.equal(noisy(frames)[0], wide(frames)[0])  # copies free to drift apart


@pytest.mark.parametrize(("widths", "hidden", "said"), [
    ((4, 16), 16, "cannot have fewer units (4) than the one it starts from (8)"),
    ((8, 16, 32), 16, "widening keeps the 2 stages"),
])
def test_widening_refuses_a_narrower_or_deeper_network(widths, hidden, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        widened(DegradationEstimator(**SMALL), widths, hidden)


def test_training_widens_the_init_it_starts_from(tmp_path):
    init = save_weights(DegradationEstimator(**SMALL), tmp_path / "narrow.safetensors")
    config = EstimatorTrainConfig(steps=1, batch=2, crop=48, workers=0, widths=(12, 24),
                                  hidden=20)
    model, _ = train_estimator(config, skimage_scenes(), progress=False, init=init)
    assert model.config["widths"] == [12, 24] and model.config["hidden"] == 20
    same, _ = train_estimator(replace(config, widths=None, hidden=None), skimage_scenes(),
                              progress=False, init=init)
    assert same.config == DegradationEstimator(**SMALL).config


@pytest.mark.parametrize("bad", [["--widths", "32,0"], ["--widths", "32,x"], ["--hidden", "-1"]])
def test_bad_widths_are_refused_by_name(bad, capsys):
    with pytest.raises(SystemExit):
        estimator_training.main([*bad, "--steps", "0"])
    said = f"expected a positive whole number, got {bad[1].split(',')[-1]!r}"
    assert said in capsys.readouterr().err


def test_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    model = DegradationEstimator(**SMALL).eval()
    path = save_weights(model, tmp_path / "e.safetensors", extra={"metrics": {"rain": 0.9}})
    loaded = load_estimator(path)
    meta = read_metadata(path)
    assert meta["config"] == model.config and meta["metrics"] == {"rain": 0.9}
    x = torch.rand(2, 3, 50, 70)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x), strict=True):
            torch.testing.assert_close(a, b)


def test_missing_weights_name_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "estimator.safetensors"
    with pytest.raises(FileNotFoundError, match="nowhere/estimator.safetensors"):
        BuiltinEstimator(weights=missing)


def test_describe_command_json(tmp_path, capsys):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((40, 60, 3), 128, np.uint8))
    assert main(["describe", str(image), "--provider", "fixed", "--fixed-text", "dense fog",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["provider"] == "fixed" and printed["labels"]["haze"] > 0.5
    assert set(printed["labels"]) == set(TYPES)
    assert {"text", "severity", "confidence"} <= set(printed)


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_shipped_estimator_tells_heavy_haze_from_clear():
    provider = BuiltinEstimator()
    clear, hazy = [], []
    for i, scene in enumerate(skimage_scenes()[:6]):
        photo = cv2.resize(scene.load(), (256, 256), interpolation=cv2.INTER_AREA)
        photo = photo.astype(np.float32) / 255.0
        rng = np.random.default_rng(i)
        hazy.append(provider.estimate(synthesize(photo, rng, [Degradation("haze", "heavy")])
                                      .degraded)[0][3])
        clear.append(provider.estimate(photo)[0][3])
    hazy, clear = np.array(hazy), np.array(clear)
    assert (hazy > clear).mean() >= 5 / 6
    assert np.median(hazy) > 0.5 > np.median(clear)


def test_the_estimator_refuses_integer_frames_instead_of_reading_them_as_floats():
    with pytest.raises(ValueError, match="got uint8: divide by 255"):
        BuiltinEstimator().describe(np.full((48, 64, 3), 200, np.uint8))


def test_a_diverging_estimator_run_stops_and_names_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(estimator_training, "estimator_loss",
                        lambda *args: estimator_loss(*args) * float("nan"))
    config = EstimatorTrainConfig(steps=12, batch=2, crop=64, workers=0, checkpoint_every=100)
    out = tmp_path / "estimator.safetensors"
    with pytest.raises(FloatingPointError, match="estimator.train.pt"):
        train_estimator(config, skimage_scenes(), out=out, progress=False)


def test_the_mixture_share_sets_how_often_weather_types_are_stacked():
    scenes = skimage_scenes()

    def stacked(share):
        config = EstimatorTrainConfig(steps=1, batch=48, crop=32, clean_p=0.0, mixture_p=share)
        data = estimator_training.training_data(config, scenes)
        return sum(int(data[i]["types"].sum()) > 1 for i in range(len(data)))
    assert stacked(0.0) == 0
    assert stacked(1.0) == 48
    assert 0 < stacked(0.35) < 48


def test_a_mixture_share_outside_zero_to_one_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        estimator_training.main(["--mixture-p", "1.5"])
    assert "mixture_p must lie in [0, 1], got 1.5" in capsys.readouterr().err
