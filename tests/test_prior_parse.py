"""Free-text weather descriptions -> labels, severity and confidence."""
import pytest

from allweather_ros.description import (
    CLEAN_TEXT,
    LOCATIONS,
    SEVERITIES,
    TYPES,
    WHOLE_FRAME,
    Degradation,
    describe,
)
from allweather_ros.prior.parse import parse

# (text, the types it affirms, types it must not affirm, severity)
TABLE = [
    ("Yes, there is heavy rain and some fog in the distance.", {"rain", "haze"},
     {"snow", "raindrop"}, "heavy"),
    ("A light drizzle.", {"rain"}, {"snow", "haze", "raindrop"}, "slight"),
    ("A torrential downpour floods the street.", {"rain"}, {"snow"}, "heavy"),
    ("Water droplets on the lens blur the view.", {"raindrop"}, {"rain", "snow"}, "moderate"),
    ("The lens is covered with rain drops.", {"raindrop"}, {"rain"}, "moderate"),
    ("A few raindrops on the windshield, no rain streaks.", {"raindrop"}, {"rain"}, "slight"),
    ("Snowflakes are falling in a blizzard.", {"snow"}, {"rain", "haze"}, "heavy"),
    ("Light flakes drift past.", {"snow"}, {"rain"}, "slight"),
    ("It is snowing moderately.", {"snow"}, {"haze"}, "moderate"),
    ("Dense smog covers the skyline.", {"haze"}, {"rain"}, "heavy"),
    ("The scene is misty.", {"haze"}, {"rain", "snow"}, "slight"),
    ("The image is hazy, the haze is thick near the horizon.", {"haze"}, {"snow"}, "heavy"),
    ("There is no rain, snow or haze.", set(), set(TYPES), "none"),
    ("It is not snowy, but there is a light drizzle.", {"rain"}, {"snow"}, "slight"),
    ("I don't see any rain. Heavy fog.", {"haze"}, {"rain"}, "heavy"),
    ("Rain is not visible; the fog is dense.", {"haze"}, {"rain"}, "heavy"),
    ("Snow is absent and the sky is foggy.", {"haze"}, {"snow"}, "moderate"),
    ("There is no evidence of rain or snow.", set(), {"rain", "snow"}, "none"),
    ("Without any haze, the frame shows slight rain.", {"rain"}, {"haze"}, "slight"),
    ("No, the image is clear.", set(), set(TYPES), "none"),
    ("No.", set(), set(TYPES), "none"),
    ("The photo is clean with no visible weather effects.", set(), set(TYPES), "none"),
    (CLEAN_TEXT, set(), set(TYPES), "none"),
    ("No, there is heavy rain.", {"rain"}, {"snow"}, "heavy"),  # "no" answers, not negates
]


@pytest.mark.parametrize("text, present, absent, severity", TABLE)
def test_parse_table(text, present, absent, severity):
    parsed = parse(text)
    assert set(parsed.labels) == set(TYPES)
    assert {t for t, p in parsed.labels.items() if p > 0.5} == present
    assert all(parsed.labels[t] < 0.5 for t in absent)
    assert parsed.severity == severity
    assert parsed.confidence >= 0.5


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("kind", TYPES)
def test_parse_reads_the_shared_vocabulary_back(kind, severity):
    """Every training description parses back to its own type and severity."""
    parsed = parse(describe([Degradation(kind, severity, "in the upper half")]))
    assert {t for t, p in parsed.labels.items() if p > 0.5} == {kind}
    assert parsed.severity == severity


def test_training_descriptions_are_their_own_canonical_text():
    for degradations in ([Degradation("snow", "moderate", LOCATIONS[3])],
                         [Degradation("rain", "heavy", WHOLE_FRAME),
                          Degradation("haze", "slight", LOCATIONS[1])], []):
        text = describe(degradations)
        assert parse(text).canonical_text() == text


def test_a_firm_claim_is_placed_across_the_whole_frame_and_a_hedged_one_is_not():
    # The restorer reads an unplaced description as a hedge (description.PLACED_PROBABILITY).
    assert parse("heavy rain, and maybe some fog").canonical_text() == describe(
        [Degradation("rain", "heavy", WHOLE_FRAME), Degradation("haze", "moderate")])
    assert parse("The image is degraded by slight haze.").canonical_text() == describe(
        [Degradation("haze", "slight", WHOLE_FRAME)])


def test_free_answers_are_restated_per_type_in_the_training_words():
    answer = ("1. Yes, the image is degraded. 2. It is raining heavily, and there is a light "
              "fog in the distance. 3. No snow.")
    parsed = parse(answer)
    assert parsed.severities == {"rain": "heavy", "haze": "slight"}
    assert parsed.canonical_text() == describe([Degradation("rain", "heavy", WHOLE_FRAME),
                                                Degradation("haze", "slight", WHOLE_FRAME)])
    assert parse("It is a photo of a cat on a sofa.").canonical_text() is None


def test_parse_two_degradations_reports_the_worst_severity():
    text = describe([Degradation("rain", "slight"), Degradation("haze", "heavy")])
    parsed = parse(text)
    assert parsed.labels["rain"] > 0.5 and parsed.labels["haze"] > 0.5
    assert parsed.severity == "heavy"


def test_parse_hedged_answers_are_less_confident():
    sure, likely, maybe = (parse(t) for t in (
        "There is fog.", "There is probably fog.", "There might be some fog."))
    assert sure.labels["haze"] > likely.labels["haze"] > maybe.labels["haze"] > 0.5
    assert sure.confidence > likely.confidence > maybe.confidence


def test_parse_hedge_after_the_claim_does_not_weaken_it():
    assert parse("Heavy rain that may reduce visibility.").confidence == parse(
        "Heavy rain.").confidence


def test_parse_contradiction_has_no_confidence():
    parsed = parse("There is rain. There is no rain.")
    assert abs(parsed.labels["rain"] - 0.5) < 0.05
    assert parsed.confidence < 0.1


def test_parse_gibberish_is_unknown_not_clean():
    parsed = parse("lenOOOOO ors7 qwerty")
    assert parsed.confidence == 0.0 and parsed.labels == {t: 0.5 for t in TYPES}
    assert parse("").confidence == 0.0


def test_parse_does_not_confuse_lookalike_words():
    parsed = parse("A rainbow over a mistake-free scene with a showcase.")
    assert parsed.confidence == 0.0
