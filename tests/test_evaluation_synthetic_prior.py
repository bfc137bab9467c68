"""A provider's reading of held-out synthetic frames, in the real set's figures (beside them in
`allweather eval --real`)."""
import pytest

from allweather_ros.data.weather import EXTERNAL
from allweather_ros.description import TYPES
from allweather_ros.evaluation import real, synthetic_prior
from allweather_ros.prior.providers import FixedPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def test_frames_carry_one_weather_or_none_and_their_renderer_set(scenes):
    records = synthetic_prior.describe_frames(FixedPrior("heavy rain"), scenes,
                                              synthetic_prior.RENDERER_SETS["left-out renderer"],
                                              repeats=1)
    assert len(records) == synthetic_prior.frames_per_set(1) == 18
    assert sum(not r["truth"] for r in records) == 6  # a third clean
    assert sorted(next(iter(r["truth"])) for r in records if r["truth"]) == sorted(TYPES * 3)
    assert all(len(r["truth"]) <= 1 for r in records)
    assert all(r["renderers"].endswith(f":{EXTERNAL}") for r in records if r["truth"])


def test_a_provider_that_always_says_heavy_rain_is_scored_on_both_renderer_sets(scenes):
    result = synthetic_prior.evaluate_synthetic_prior(FixedPrior("heavy rain"), scenes, repeats=1)
    assert list(result) == list(synthetic_prior.RENDERER_SETS)
    for figures in result.values():
        assert figures["photos"] == 18
        assert figures["per_type"]["rain"]["top1"] == {"rate": 1.0, "n": 3}
        assert figures["per_type"]["haze"]["top1"] == {"rate": 0.0, "n": 3}
        assert figures["clean_called_clean"] == {"rate": 0.0, "n": 6}
        assert figures["weather_called_no_weather"]["rate"] == 0.0
    shown = real.beside_synthetic({**result["training renderers"], "synthetic": result})
    assert "| rain | 100% / 100% / 100% |" in shown
    assert "clean called clean: real 0% (6), training renderers 0% (6)" in shown
