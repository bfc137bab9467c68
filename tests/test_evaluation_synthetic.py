"""The synthetic evaluation scores every method per type and writes its report."""
import json

import torch
from conftest import TINY

from allweather_ros.data.datasets import SyntheticWeatherDataset
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.description import GENERIC_TEXT, TYPES, Degradation, describe
from allweather_ros.evaluation import synthetic, synthetic_report
from allweather_ros.model import LDRNet
from allweather_ros.prior.prior import Prior


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
    assert (tmp_path / "contact_sheet.png").stat().st_size > 0
    assert (tmp_path / "expert_usage.png").stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["samples"] == 6


class RecordingEncoder(FixedEncoder):
    def __init__(self):
        self.texts = []

    def encode(self, text: str) -> torch.Tensor:
        self.texts.append(text)
        return super().encode(text)


class DoubtfulEstimator:
    """Always 'heavy snow', at confidence 0.2."""

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
