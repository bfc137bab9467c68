"""The weather memory: type readings pooled by log-odds, the newest `readings` kept; and the
built-in estimator putting a pooled reading into words, its severity the frame's own."""
import numpy as np
import pytest

from allweather_ros.description import TYPES
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
from allweather_ros.prior.weather_memory import WeatherMemory


def reading(**probabilities):
    """Per-type probabilities: 0.05 unless given."""
    return np.array([probabilities.get(t, 0.05) for t in TYPES])


def test_one_reading_is_no_memory():
    memory = WeatherMemory(1)
    for _ in range(3):
        memory.pool(reading(haze=0.95))
    assert memory.pool(reading(rain=0.7)) == pytest.approx(reading(rain=0.7))
    assert len(memory) == 1


def test_readings_are_pooled_by_their_log_odds():
    memory = WeatherMemory(3)
    memory.pool(reading(rain=0.9))
    assert memory.pool(reading(rain=0.1))[TYPES.index("rain")] == pytest.approx(0.5)
    p = memory.pool(reading(rain=0.9))  # two of three say rain, as sure as the third is not
    assert p[TYPES.index("rain")] == pytest.approx(1 / (1 + 9 ** (-1 / 3)))  # log-odds ln 9 / 3
    assert p[TYPES.index("snow")] == pytest.approx(0.05)


def test_only_the_newest_readings_count():
    memory = WeatherMemory(2)
    for _ in range(5):
        memory.pool(reading(rain=0.99))
    # the rain stopped: one old reading is left in the memory, then none
    assert memory.pool(reading())[TYPES.index("rain")] > 0.5
    assert memory.pool(reading()) == pytest.approx(reading())
    memory.readings = 3  # a run-time change applies from the next reading on
    memory.pool(reading(rain=0.99))
    assert memory.pool(reading(rain=0.99))[TYPES.index("rain")] > 0.5 and len(memory) == 3


def test_certainties_stay_finite():
    memory = WeatherMemory(2)
    memory.pool(np.array([1.0, 0.0, 0.0, 0.0]))
    p = memory.pool(np.array([0.0, 1.0, 0.0, 0.0]))
    assert np.isfinite(p).all() and p[0] == pytest.approx(0.5) and p[2] < 1e-5


def test_clear_forgets_and_bad_sizes_are_refused():
    memory = WeatherMemory(4)
    memory.pool(reading(haze=0.99))
    memory.clear()
    assert len(memory) == 0 and memory.pool(reading()) == pytest.approx(reading())
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="at least 1 reading"):
            WeatherMemory(bad)
        with pytest.raises(ValueError, match="at least 1 reading"):
            memory.readings = bad
    assert memory.readings == 4


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_the_estimator_names_what_its_memory_has_seen_at_the_frames_severity():
    estimator = BuiltinEstimator()
    frame = np.full((96, 128, 3), 0.5, np.float32)
    frame[:, ::8] = 0.8  # a plain wall: whatever the estimator makes of it alone
    alone = estimator.describe(frame)
    assert estimator.describe(frame, memory=WeatherMemory(1)).text == alone.text
    memory = WeatherMemory(4)
    for _ in range(3):  # three readings of dense fog before this frame
        memory.pool(reading(haze=0.99))
    pooled = estimator.describe(frame, memory=memory)
    assert "haze" in pooled.text and pooled.labels["haze"] > max(alone.labels["haze"], 0.5)
    probabilities, severity = estimator.estimate(frame)
    memory = WeatherMemory(4)
    for _ in range(3):
        memory.pool(reading(haze=0.99))
    assert pooled.text == estimator.prior_from(memory.pool(probabilities), severity).text
    assert estimator.remembers
