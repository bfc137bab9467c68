"""The synthetic evaluation scores every method per type and writes its report."""
import json

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY
from skimage import data

from allweather_ros import cli
from allweather_ros.data.datasets import SyntheticWeatherDataset
from allweather_ros.data.sources import folder_scenes, scenes_in_split, skimage_scenes
from allweather_ros.data.weather import RENDERERS
from allweather_ros.description import GENERIC_TEXT, TYPES, Degradation, describe
from allweather_ros.evaluation import synthetic, synthetic_report
from allweather_ros.evaluation.harm import harm_report, tone_error
from allweather_ros.evaluation.scoring import (
    PSNR_CAP,
    degradations_of,
    group_of,
    psnr,
    standard_error,
)
from allweather_ros.model import LDRNet
from allweather_ros.prior.prior import Prior

pytestmark = pytest.mark.usefixtures("one_thread")


class FixedEncoder:
    def encode(self, text: str) -> torch.Tensor:
        return torch.ones(4, TINY["prior_dim"]) * (len(text) % 7)


def test_scores_per_type_and_report_files(tmp_path):
    torch.manual_seed(0)
    model = LDRNet(**TINY)
    recipes = [[Degradation("haze", "heavy")], [Degradation("rain", "moderate")], []]
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=40, length=6,
                                   wrong_description_p=0.0, flips=False, recipes=recipes)
    result = synthetic.evaluate(model, data, no_prior=model, encoder=FixedEncoder(),
                                median_kernel=3)
    assert result["samples"] == 6
    assert set(result["by_type"]) == {"haze", "rain", "clean"}
    assert set(result["overall"]) == {"input", "classical", "full", "no_prior"}
    assert result["overall"]["input"]["n"] == 4, "clean frames stay out of the overall mean"
    haze = result["by_type"]["haze"]
    assert haze["classical"]["psnr"] > haze["input"]["psnr"], "dark channel prior helps haze"
    assert abs(sum(result["expert_usage"]["rain"]) - 1) < 1e-6
    report = synthetic_report.write(result, tmp_path, "allweather eval --synthetic")
    text = report.read_text()
    assert "| haze (n=2) |" in text and "all weather" in text
    assert (tmp_path / "contact_sheet.jpg").stat().st_size > 0
    assert (tmp_path / "expert_usage.png").stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["samples"] == 6
    assert "Frames made worse (more than 0.1 dB below the input" in text
    # the same network as both methods: every frame's difference is 0, and so is its error
    assert result["paired_db"] == {"full - no_prior": {"mean": 0.0, "se": 0.0, "n": 4}}
    assert "Paired over the 4 weather frames" in text
    assert "full (true text) minus no prior +0.00 ± 0.00" in text


def test_paired_differences_and_their_standard_error():
    """Differences are taken frame by frame, so a method that is uniformly 1 dB better has an
    error of 0 however much the frames differ; the error is the sample's, ddof 1."""
    psnr = {"input": [20.0, 30.0, 25.0], "no_prior": [21.0, 31.0, 26.0],
            "full_estimated": [22.0, 30.0, 27.0]}
    paired = synthetic._paired(psnr)
    assert set(paired) == {"full_estimated - no_prior", "full_estimated - input"}
    assert paired["full_estimated - input"] == {"mean": pytest.approx(4 / 3), "n": 3,
                                                "se": pytest.approx(np.std([2, 0, 2], ddof=1)
                                                                    / np.sqrt(3))}
    uniform = synthetic._paired({"input": [20.0, 40.0], "no_prior": [21.0, 41.0],
                                 "full": [22.0, 42.0]})
    assert uniform["full - no_prior"] == {"mean": 1.0, "se": 0.0, "n": 2}
    assert standard_error([5.0]) == 0.0


def test_psnr_is_capped_so_an_untouched_frame_leaves_means_and_costs_finite():
    frame = data.astronaut()[::8, ::8].astype(np.float32) / 255.0
    assert psnr(frame, frame) == PSNR_CAP
    nudged = frame.copy()
    nudged[0, 0, 0] += 1e-7  # a float32 step: far above 100 dB, still capped
    assert psnr(nudged, frame) == PSNR_CAP
    nudged[0, 0, 0] = 1.0 - frame[0, 0, 0]
    assert 30.0 < psnr(nudged, frame) < PSNR_CAP
    assert psnr(frame + 0.5, frame) == psnr(np.minimum(frame + 0.5, 1.0), frame)  # clipped


def test_frames_made_worse_counts_any_change_to_a_clean_frame_and_none_by_the_identity():
    """A fresh network is the identity (its last layers start at zero), so it makes no frame
    worse; one that lifts every pixel a little changes both clean frames, and each counts."""
    identity, lifted = LDRNet(**TINY), LDRNet(**TINY)
    with torch.no_grad():
        lifted.ending[0].bias.fill_(0.03)
    recipes = [[], [Degradation("rain", "moderate")]]
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=40, length=4,
                                   wrong_description_p=0.0, flips=False, recipes=recipes)
    result = synthetic.evaluate(identity, data, no_prior=lifted, encoder=FixedEncoder(),
                                median_kernel=3)
    worse = result["frames_made_worse"]
    assert set(worse) == {"classical", "full", "no_prior"}
    assert worse["full"] == {"frames": 0, "n": 4}
    assert worse["no_prior"]["n"] == 4 and worse["no_prior"]["frames"] >= 2
    # Untouched clean frames count at the cap, so a changed one shows in the mean and lowest.
    clean = result["by_type"]["clean"]
    assert clean["full"] == {"psnr": 100.0, "lowest_psnr": 100.0, "ssim": 1.0, "n": 2}
    assert np.isfinite(clean["no_prior"]["psnr"]) and clean["no_prior"]["lowest_psnr"] < 40.0
    line = synthetic_report.clean_line(result)
    assert line.startswith("Clean frames, the lowest PSNR of 2 (dB): input 100.00, ")
    assert f"no prior {clean['no_prior']['lowest_psnr']:.2f}" in line


class RecordingEncoder(FixedEncoder):
    def __init__(self):
        self.texts = []

    def encode(self, text: str) -> torch.Tensor:
        self.texts.append(text)
        return super().encode(text)


class DoubtfulEstimator:
    """Always 'heavy snow', at confidence 0.2."""

    name = "doubtful"

    def describe(self, frame):
        return Prior(text=describe([Degradation("snow", "heavy")]),
                     labels={t: float(t == "snow") for t in TYPES}, severity="heavy",
                     confidence=0.2, provider="test")


def test_the_estimate_is_coarsened_as_the_pipeline_does():
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=32, length=2,
                                   wrong_description_p=0.0, flips=False,
                                   recipes=[[Degradation("rain", "moderate")]])
    snow = describe([Degradation("snow", "heavy")])
    for min_confidence, said, unsaid in ((0.5, GENERIC_TEXT, snow), (0.1, snow, GENERIC_TEXT)):
        encoder = RecordingEncoder()
        result = synthetic.evaluate(LDRNet(**TINY), data, estimator=DoubtfulEstimator(),
                                    encoder=encoder, median_kernel=3,
                                    min_confidence=min_confidence)
        assert "full_estimated" in result["overall"]
        assert said in encoder.texts and unsaid not in encoder.texts


class NamedEstimator(DoubtfulEstimator):
    name = "builtin"


def test_a_paired_dataset_names_the_full_column_by_what_it_was_told(tmp_path):
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=32, length=2,
                                   wrong_description_p=0.0, flips=False,
                                   recipes=[[Degradation("rain", "moderate")]])
    paired = [{k: item[k] for k in ("degraded", "clean", "types")} for item in data]
    for estimator, told in ((NamedEstimator(), "built-in estimate"), (None, "generic text")):
        result = synthetic.evaluate(LDRNet(**TINY), paired, estimator=estimator,
                                    encoder=FixedEncoder(), median_kernel=3, min_confidence=0.1)
        assert result["full_told"] == told
        text = synthetic_report.write(result, tmp_path, "allweather eval --paired D").read_text()
        assert text.startswith("# Paired dataset") and f"| full ({told}) |" in text
        assert "full (true text)" not in text
    assert synthetic.evaluate(LDRNet(**TINY), data, encoder=FixedEncoder(),
                              median_kernel=3)["full_told"] == "true text"


def test_the_end_to_end_column_is_named_by_the_provider_that_estimated(tmp_path):
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=32, length=2,
                                   wrong_description_p=0.0, flips=False,
                                   recipes=[[Degradation("rain", "moderate")]])
    for estimator, name in ((NamedEstimator(), "built-in estimate"),
                            (DoubtfulEstimator(), "doubtful estimate")):
        result = synthetic.evaluate(LDRNet(**TINY), data, estimator=estimator,
                                    encoder=FixedEncoder(), median_kernel=3, min_confidence=0.1)
        assert result["estimate_name"] == name
        text = synthetic_report.write({**result, "split": "val"}, tmp_path,
                                      "allweather eval --synthetic").read_text()
        assert f"| full (true text) | full ({name}) |" in text
        assert f"(where scored) the {name}," in text


class _Out:
    def __init__(self, restored):
        self.restored = restored
        self.expert_indices = torch.zeros(1, 1, 2, 2, dtype=torch.long)


class ScrubsWhenToldHeavy(torch.nn.Module):
    """A restorer that returns its frame, but darkens it by 30% when the text says heavy:
    what the estimator's "heavy" did to light rain."""

    config = {"num_experts": 4}

    def encode_prior(self, tokens, mask):
        return (tokens.abs().sum() > 0,)

    def forward(self, frame, heavy):
        return _Out(frame * (0.7 if heavy else 1.0))


class HeavyEncoder:
    word = "heavy"

    def encode(self, text: str) -> torch.Tensor:
        return torch.ones(2, 3) * (self.word in text)


class HazeEncoder(HeavyEncoder):
    word = "moderate haze"


def test_the_truth_an_evaluation_tells_is_the_true_text():
    """Placed where the weather lies: told the truth unplaced, the restorer hedges and the
    do-no-harm figures would be measured against less than the truth."""
    data = SyntheticWeatherDataset(skimage_scenes(), "train", crop=48, length=12,
                                   wrong_description_p=0.0, flips=False, seed=3)
    items = list(data)
    placed = [item for item in items if any(d.location for d in degradations_of(item))]
    assert placed, "the synthesis places most weather"
    for item in items:
        assert describe(degradations_of(item)) == item["true_text"]
    paired = {"types": torch.tensor([1.0, 0.0, 0.0, 0.0]), "severity": None}
    assert degradations_of(paired) == [Degradation("rain", "moderate")]


def test_harm_report_prices_a_wrong_severity_word_and_tone_shifts():
    data = SyntheticWeatherDataset(
        skimage_scenes(), "train", crop=48, length=4, wrong_description_p=0.0, flips=False,
        recipes=[[Degradation("rain", "slight")], [], [Degradation("snow", "slight")],
                 [Degradation("haze", "moderate")]], renderers={"rain": "drizzle"})
    harm = harm_report(ScrubsWhenToldHeavy(), data, HeavyEncoder())
    light = [item for item in data if all(d.severity == "slight"
                                          for d in degradations_of(item))]
    assert harm["cost_db"]["heavy"]["n"] == len(light) - 1  # clean frames have nothing to raise
    assert list(harm["cost_db"]) == sorted(harm["cost_db"]) == list(harm["cost_db_by_group"])
    assert harm["cost_db"]["heavy"]["mean"] > 3.0  # a 30% darkening costs several dB
    assert harm["cost_db"]["generic"]["mean"] == 0.0
    assert harm["cost_db"]["generic"]["n"] == len(data) - 1  # weather frames only
    assert harm["cost_db"]["generic"]["se"] == 0.0  # costs nothing on every frame
    assert harm["cost_db"]["heavy"]["se"] > 0.0  # darkening costs each frame differently
    by_type = harm["cost_db_by_group"]["heavy"]  # which weather pays it
    assert set(by_type) == {group_of(degradations_of(item)) for item in light} - {"clean"}
    assert sum(c["n"] for c in by_type.values()) == harm["cost_db"]["heavy"]["n"]
    assert sum(c["mean"] * c["n"] for c in by_type.values()) == pytest.approx(
        harm["cost_db"]["heavy"]["mean"] * harm["cost_db"]["heavy"]["n"])
    assert harm["clean_psnr"]["mean"] == 100.0  # returned untouched (capped from infinity)
    assert harm["clean_generic_psnr"] == {"mean": 100.0, "lowest": 100.0, "n": 1}
    assert harm["tone_error"]["clean"]["input"] == 0.0
    # told the truth, the frames are returned as they came: restored tones equal the input's
    for tones in harm["tone_error"].values():
        assert tones["restored"] == pytest.approx(tones["input"])
    assert all(gain == pytest.approx(0.0) for gain in harm["slight_gain_db"].values())
    assert harm["cost_db"]["false_haze"] == {"mean": 0.0, "se": 0.0, "worst": 0.0,
                                              "n": 2}  # not told haze
    assert harm["clean_false_haze_psnr"]["mean"] == 100.0
    hazed = harm_report(ScrubsWhenToldHeavy(), data, HazeEncoder())  # scrubs when told haze
    assert hazed["cost_db"]["false_haze"]["n"] == 2  # the rain and snow frames
    assert hazed["cost_db"]["false_haze"]["mean"] > 3.0
    assert hazed["clean_false_haze_psnr"]["mean"] < 30.0  # 30% darker


class ReadsSlightWeather:
    """A built-in estimator sure that every weather it reads is slight."""

    def estimate(self, frame):
        return np.full(4, 0.9), np.tile([0.998, 0.001, 0.001], (4, 1))


def test_harm_report_prices_the_words_as_a_vlms_reach_the_restorer_rain_checked():
    data = SyntheticWeatherDataset(
        skimage_scenes(), "train", crop=48, length=3, wrong_description_p=0.0, flips=False,
        recipes=[[Degradation("rain", "slight")], [Degradation("snow", "slight")], []],
        renderers={"rain": "drizzle"})
    harm = harm_report(ScrubsWhenToldHeavy(), data, HeavyEncoder(), ReadsSlightWeather())
    checked = harm["cost_db_by_group"]["heavy_checked"]
    assert checked["rain"]["mean"] == 0.0  # "heavy" taken back: not scrubbed
    assert checked["snow"]["mean"] == harm["cost_db_by_group"]["heavy"]["snow"]["mean"] > 3.0
    assert harm["cost_db"]["truth_checked"]["mean"] == 0.0  # a right word stands
    assert "heavy_checked" not in harm_report(ScrubsWhenToldHeavy(), data, HeavyEncoder())[
        "cost_db"]


def test_tone_error_sees_a_global_darkening_that_fine_texture_hides():
    clean = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    assert tone_error(clean, clean) == 0.0
    assert tone_error(clean * 0.9, clean) > 0.04
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.1, clean.shape), 0, 1)
    assert tone_error(noisy.astype(np.float32), clean) < 0.01  # zero-mean detail averages out


def _scenes_in_every_split(folder):
    """Small photo files named so that the hash split puts some in val and in test."""
    folder.mkdir()
    photo = (data.astronaut()[::8, ::8]).copy()
    for i in range(40):
        cv2.imwrite(str(folder / f"scene_{i}.png"), np.roll(photo, 7 * i, axis=1))
    scenes = folder_scenes(folder)
    assert all(scenes_in_split(scenes, split) for split in ("val", "test"))
    return scenes


def test_synthetic_evaluation_reports_the_left_out_renderer_and_harm(tmp_path):
    torch.manual_seed(0)
    model = LDRNet(**{**TINY, "prior_dim": 384})
    scenes = _scenes_in_every_split(tmp_path / "scenes")
    result = synthetic.evaluate_synthetic(model, scenes, repeats=1, crop=32)
    left_out = result["left_out"]
    assert {key.split(":")[1] for key in left_out["by_renderer"]} == {"albumentations"}
    assert {key.split(":")[1] for key in result["by_renderer"]} <= {
        name for names in RENDERERS.values() for name in names}
    for harm in (result["harm"], left_out["harm"]):
        assert {"one_tier_higher", "heavy", "generic", "false_haze"} <= set(harm["cost_db"])
    labels = [e["label"] for e in result["renderer_examples"]]
    assert len(labels) == 2 * sum(len(names) + 1 for names in RENDERERS.values())
    out = tmp_path / "report"
    report = synthetic_report.write(result, out, "allweather eval --synthetic").read_text()
    assert "## The left-out renderer" in report and "cost of one tier higher" in report
    assert "cost of heavy (dB, mean ± s.e. / worst)" in report
    heavy_by_type = result["harm"]["cost_db_by_group"]["heavy"]
    assert heavy_by_type
    for group, cost in heavy_by_type.items():  # a row per type, n beside each cell
        assert f"cost of heavy on {group} frames" in report
        assert f"{cost['mean']:.2f} ± {cost['se']:.2f} / {cost['worst']:.2f}, {cost['n']}" in report
    assert "cost of false haze" in report and "clean frames, told moderate haze" in report
    per_severity = report.split("## PSNR per type and severity")[1].split("## Examples")[0]
    training, left = per_severity.split("The left-out renderer:")
    for rows, scores in ((training, result), (left, left_out)):  # each set's own figures
        for key, by_method in scores["by_type_severity"].items():
            assert f"| {key} | {by_method['input']['psnr']:.2f} |" in rows
    assert (out / "renderers_sheet.jpg").stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert "examples" not in saved["left_out"] and "renderer_examples" not in saved


def test_a_fresh_validation_draw_replicates_on_new_weather_and_the_test_split_stays_fixed(
        tmp_path, capsys):
    """--val-seed draws new weather on the validation scenes (a replicate of a choice made on
    the usual draw); the test split's weather cannot be redrawn."""
    scenes = _scenes_in_every_split(tmp_path / "scenes")
    model = LDRNet(**{**TINY, "prior_dim": 384})

    def inputs(seed):
        result = synthetic.evaluate_synthetic(model, scenes, repeats=1, crop=32, split="val",
                                              val_seed=seed)
        return [scores["input"]["psnr"] for scores in result["by_type_severity"].values()]

    usual = inputs(synthetic.VALIDATION_SEED)
    assert usual == inputs(synthetic.VALIDATION_SEED)
    assert usual != inputs(synthetic.VALIDATION_SEED + 100)
    with pytest.raises(ValueError, match="test split's weather is fixed"):
        synthetic.evaluate_synthetic(model, scenes, split="test", val_seed=8)
    assert cli.main(["eval", "--synthetic", "--val-seed", "8"]) != 0
    assert "--val-seed draws the weather of --synthetic --split val" in capsys.readouterr().err


class _Remembering:
    """An estimator that reads rain from a frame's brightness, and remembers (as the built-in
    estimator does): so pooled readings can name another weather than the frame alone."""

    name, remembers = "builtin", True

    def estimate(self, frame):
        rain = 0.9 if frame.mean() > 0.45 else 0.2
        return np.array([rain, 0.05, 0.05, 0.05]), np.full((4, 3), 1 / 3)

    def describe(self, frame):
        return self.prior_from(*self.estimate(frame))

    def prior_from(self, probabilities, severity):
        text = "heavy rain" if probabilities[0] >= 0.5 else GENERIC_TEXT
        return Prior(text, dict(zip(TYPES, map(float, probabilities), strict=True)), "heavy",
                     0.9, self.name)


def test_drive_scores_read_each_frame_alone_and_after_others_of_its_weather(tmp_path):
    torch.manual_seed(0)
    model = LDRNet(**TINY)
    scenes = _scenes_in_every_split(tmp_path / "scenes")
    test = SyntheticWeatherDataset(scenes, "test", crop=32, seed=3, length=12, flips=False,
                                   recipes=[[Degradation("rain", "heavy")], []])
    alone = synthetic.evaluate(model, test, estimator=_Remembering(), encoder=FixedEncoder())
    assert "drives" not in alone
    drives = synthetic.evaluate(model, test, estimator=_Remembering(), encoder=FixedEncoder(),
                                drive_readings=4)["drives"]
    assert drives["readings"] == 4 and drives["n"] == 12
    assert drives["weather_psnr"]["alone"] == pytest.approx(
        alone["overall"]["full_estimated"]["psnr"])
    assert drives["frames_made_worse"]["alone"] == \
        alone["frames_made_worse"]["full_estimated"]["frames"]
    assert np.isfinite(drives["weather_psnr"]["drive"])
    report = synthetic_report.drive_line({"drives": drives, "estimate_name": "built-in estimate"})
    assert "others of its weather" in report and f"of {drives['n']}" in report


def test_eval_scores_the_network_the_frame_gate_option_runs(monkeypatch):
    """--frame-gate false scores the shipped weights without their frame gate, as the node
    with `frame_gate: false` restores."""
    scored = []

    def recording(full, *args, **kwargs):
        scored.append(full)
        raise RuntimeError("recorded")

    monkeypatch.setattr(synthetic, "evaluate_synthetic", recording)
    for flag in ("true", "false"):
        with pytest.raises(RuntimeError, match="recorded"):
            cli.main(["eval", "--synthetic", "--split", "val", "--provider", "none",
                      "--frame-gate", flag])
    assert scored[0].frame_gate is not None and scored[1].frame_gate is None
