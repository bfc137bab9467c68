"""The synthetic evaluation scores every method per type and writes its report."""
import json

import torch
from conftest import TINY

from allweather_ros.data.datasets import SyntheticWeatherDataset
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.description import Degradation
from allweather_ros.evaluation import synthetic, synthetic_report
from allweather_ros.model import LDRNet


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
