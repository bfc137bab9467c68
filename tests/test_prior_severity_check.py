"""A VLM's rain severity weighed against the built-in estimator's reading (prior/severity_check.py):
an overstated or understated rain word gives way to a sure reading, a word the reading cannot
contradict stands, other types are never touched, and the VLM path gets the check by default."""
from dataclasses import replace

import numpy as np
import pytest

from allweather_ros.description import SEVERITIES, TYPES, Degradation, describe
from allweather_ros.prior.builtin import severity_choice
from allweather_ros.prior.prior import PriorProvider, prior_from_text
from allweather_ros.prior.severity_check import (
    SeverityChecked,
    checked_degradations,
    checked_prior,
    checked_word,
)

SURE = {s: np.eye(3)[i] * 0.997 + 0.001 for i, s in enumerate(SEVERITIES)}
UNSURE = np.full(3, 1 / 3)


def _reading(rain=UNSURE, other=UNSURE) -> np.ndarray:
    """The estimator's severity distributions, (types, tiers): `rain` for rain, `other` else."""
    return np.stack([rain if t == "rain" else other for t in TYPES])


class Encoder:
    def encode(self, text: str) -> np.ndarray:
        return np.full((2, 3), float(len(text)), np.float32)


@pytest.mark.parametrize("said", SEVERITIES)
def test_a_sure_reading_overrules_the_word(said):
    assert checked_word(said, SURE["slight"], "rain") == "slight"
    assert checked_word(said, SURE["heavy"], "rain") == "heavy"


def test_an_unsure_reading_leaves_the_word_as_rains_prices_would_say_it():
    """With nothing read, the word is the evidence: heavy and moderate stand; slight is said
    moderate, as the built-in estimator's own choice would (a rain word a tier too high costs
    little, one too low much: builtin.MISSTATEMENT_COST_BY_TYPE)."""
    assert checked_word("heavy", UNSURE, "rain") == "heavy"
    assert checked_word("moderate", UNSURE, "rain") == "moderate"
    assert checked_word("slight", UNSURE, "rain") == "moderate"


def test_the_word_tips_a_reading_between_tiers():
    """A reading between moderate and heavy says moderate alone (the estimator's own choice);
    with a VLM's "heavy" it says heavy."""
    between = np.array([0.2, 0.5, 0.3])
    assert SEVERITIES[severity_choice(between, "rain")] == "moderate"
    assert checked_word("heavy", between, "rain") == "heavy"


def test_only_rain_is_checked():
    said = [Degradation("rain", "heavy", "across the whole frame"), Degradation("snow", "heavy"),
            Degradation("haze", "heavy")]
    checked = checked_degradations(said, _reading(SURE["slight"], SURE["slight"]))
    assert checked == [replace(said[0], severity="slight"), *said[1:]]


def test_a_vlm_prior_told_heavy_of_light_rain_is_revised_and_keeps_the_vlms_words():
    answer = "Yes, heavy rain is falling and there is moderate fog."
    prior = prior_from_text(answer, "vlm:tiny", Encoder())
    checked = checked_prior(prior, _reading(SURE["slight"], SURE["heavy"]), Encoder())
    assert checked.text == describe([Degradation("rain", "slight", "across the whole frame"),
                                     Degradation("haze", "moderate", "across the whole frame")])
    assert checked.severity == "moderate"  # the worst word said, now haze's
    assert checked.source_text == answer
    assert checked.labels == prior.labels and checked.provider == prior.provider
    np.testing.assert_array_equal(checked.tokens, Encoder().encode(checked.text))


def test_a_hedged_claim_stays_unplaced_and_an_agreeing_reading_changes_nothing():
    hedged = prior_from_text("There might be heavy rain.", "vlm:tiny", Encoder())
    checked = checked_prior(hedged, _reading(SURE["moderate"]), Encoder())
    assert checked.text == describe([Degradation("rain", "moderate")])  # no "whole frame"
    assert checked_prior(hedged, _reading(SURE["heavy"]), Encoder()) is hedged


@pytest.mark.parametrize("answer", ["I cannot tell what this picture shows.",
                                    "The image is clear.", "Dense fog over the road."])
def test_a_prior_without_rain_is_returned_as_it_is(answer):
    prior = prior_from_text(answer, "vlm:tiny", Encoder())
    assert checked_prior(prior, _reading(SURE["slight"], SURE["slight"]), Encoder()) is prior


class _SaysHeavyRain(PriorProvider):
    name = "vlm:says-heavy"
    token_source = "text_encoder"

    def describe(self, frame):
        return prior_from_text("Heavy rain.", self.name, Encoder())


class _ReadsSlightRain:
    def __init__(self):
        self.frames = []

    def estimate(self, frame):
        self.frames.append(frame)
        return np.full(len(TYPES), 0.9), _reading(SURE["slight"])


def test_the_checked_provider_reads_the_same_frame_under_the_vlms_name():
    estimator = _ReadsSlightRain()
    provider = SeverityChecked(_SaysHeavyRain(), estimator, Encoder())
    frame = np.zeros((8, 8, 3), np.float32)
    prior = provider.describe(frame)
    assert estimator.frames == [frame]
    assert provider.name == prior.provider == "vlm:says-heavy"
    assert prior.severity == "slight" and prior.source_text == "Heavy rain."


def test_hidden_state_tokens_cannot_be_checked():
    hidden = _SaysHeavyRain()
    hidden.token_source = "vlm_hidden"
    with pytest.raises(ValueError, match="hidden states"):
        SeverityChecked(hidden, _ReadsSlightRain(), Encoder())
