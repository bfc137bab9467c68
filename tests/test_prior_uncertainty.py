"""The Prior record, the model-free providers, and coarsening of uncertain estimates."""
import json

import pytest
import torch

from allweather_ros.description import GENERIC_TEXT, TYPES, Degradation, describe
from allweather_ros.prior.prior import Prior, prior_from_text
from allweather_ros.prior.providers import FixedPrior, NoPrior
from allweather_ros.prior.uncertainty import coarsen


class FakeEncoder:
    """A deterministic stand-in: one token per word, its value the word's length."""

    dim = 2

    def encode(self, text):
        return torch.tensor([[len(w), 1.0] for w in text.split()])


def estimate(confidence, labels=None):
    labels = labels or {"rain": 0.9, "raindrop": 0.1, "snow": 0.1, "haze": 0.8}
    return Prior("heavy rain and thick fog", labels, "heavy", confidence, "vlm:x",
                 tokens=torch.ones(3, 2))


def test_prior_to_json_has_the_documented_keys():
    prior = prior_from_text("Heavy rain and slight haze.", "fixed")
    data = json.loads(prior.to_json())
    assert data["text"] == ("The image is degraded by heavy rain streaks across the whole frame"
                            " and slight haze across the whole frame.")
    assert data["source_text"] == "Heavy rain and slight haze."
    assert set(data["labels"]) == set(TYPES) and data["labels"]["rain"] > 0.5
    assert data["severity"] == "heavy" and data["provider"] == "fixed"
    assert data["granularity"] == "degree" and data["tokens"] is None
    assert 0 <= data["confidence"] <= 1 and data["stamp"] > 1e9
    assert prior.age() >= 0


@pytest.mark.parametrize("change", [
    {"labels": {"rain": 0.5}},
    {"labels": {t: 1.5 for t in TYPES}},
    {"severity": "extreme"},
    {"confidence": 1.2},
    {"granularity": "fine"},
    {"tokens": torch.zeros(3)},
])
def test_prior_rejects_malformed_fields(change):
    fields = dict(text="t", labels={t: 0.1 for t in TYPES}, severity="none", confidence=0.5,
                  provider="p")
    Prior(**fields)
    with pytest.raises(ValueError):
        Prior(**{**fields, **change})


def test_fixed_prior_is_certain_and_parsed():
    prior = FixedPrior("Light snow all day at this site.").describe(None)
    assert prior.confidence == 1.0 and prior.severity == "slight"
    assert max(prior.labels, key=prior.labels.get) == "snow"
    assert prior.tokens is None  # text-only without an encoder


def test_no_prior_is_the_uniform_generic_prior():
    prior = NoPrior(FakeEncoder()).describe(None)
    assert prior.text == GENERIC_TEXT and prior.granularity == "all"
    assert prior.labels == {t: 0.5 for t in TYPES} and prior.confidence == 0.0
    assert torch.equal(prior.tokens, FakeEncoder().encode(GENERIC_TEXT))


def test_confident_estimate_is_kept_as_is():
    prior = estimate(0.8)
    assert coarsen(prior, NoPrior().describe(None), 0.5, FakeEncoder()) is prior


def test_somewhat_uncertain_estimate_keeps_types_and_withholds_severity():
    generic = NoPrior(FakeEncoder()).describe(None)
    prior = coarsen(estimate(0.3), generic, 0.5, FakeEncoder())
    expected = describe([Degradation("rain", "moderate"), Degradation("haze", "moderate")])
    assert prior.granularity == "type" and prior.text == expected
    assert prior.severity == "moderate"
    assert torch.equal(prior.tokens, FakeEncoder().encode(expected))
    trust = 0.3 / 0.5
    assert prior.labels["rain"] == pytest.approx(trust * 0.9 + (1 - trust) * 0.5)
    assert prior.provider == "vlm:x" and prior.confidence == 0.3  # reported honestly


def test_very_uncertain_estimate_becomes_the_generic_prior():
    generic = NoPrior(FakeEncoder()).describe(None)
    prior = coarsen(estimate(0.1), generic, 0.5, FakeEncoder())
    assert prior.granularity == "all" and prior.text == generic.text
    assert torch.equal(prior.tokens, generic.tokens)
    assert all(abs(p - 0.5) < 0.1 for p in prior.labels.values())
    assert prior.labels["rain"] > prior.labels["snow"]  # still leans the estimate's way


def test_uncertain_clean_estimate_has_no_type_level_and_goes_generic():
    clean = {t: 0.1 for t in TYPES}
    prior = coarsen(estimate(0.4, clean), NoPrior().describe(None), 0.5, None)
    assert prior.granularity == "all" and prior.tokens is None
