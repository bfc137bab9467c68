"""Degradation descriptions read the same whoever writes them."""
import pytest

from allweather_ros.description import CLEAN_TEXT, Degradation, describe


def test_descriptions_name_type_severity_and_place():
    text = describe([Degradation("rain", "heavy", "across the whole frame"),
                     Degradation("haze", "slight")])
    assert text == ("The image is degraded by heavy rain streaks across the whole frame "
                    "and slight haze.")
    assert describe([]) == CLEAN_TEXT


def test_unknown_words_are_refused():
    with pytest.raises(ValueError, match="degradation type"):
        Degradation("hail", "heavy")
    with pytest.raises(ValueError, match="severity"):
        Degradation("snow", "extreme")
