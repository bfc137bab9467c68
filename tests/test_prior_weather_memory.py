"""The weather memory: readings pooled by log-odds, the newest `readings` kept, severity led by
the sure readings; and the built-in estimator putting a pooled reading into words."""
import numpy as np
import pytest

from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
from allweather_ros.prior.weather_memory import WeatherMemory

EVEN = np.full((len(TYPES), len(SEVERITIES)), 1.0 / len(SEVERITIES))


def reading(**probabilities):
    """Per-type probabilities (0.05 unless given) and even severity distributions."""
    return np.array([probabilities.get(t, 0.05) for t in TYPES]), EVEN.copy()


def test_one_reading_is_no_memory():
    memory = WeatherMemory(1)
    for _ in range(3):
        memory.pool(*reading(haze=0.95))
    p, s = memory.pool(*reading(rain=0.7))
    assert p == pytest.approx(reading(rain=0.7)[0]) and s == pytest.approx(EVEN)


def test_readings_are_pooled_by_their_log_odds():
    memory = WeatherMemory(3)
    memory.pool(*reading(rain=0.9))
    p, _ = memory.pool(*reading(rain=0.1))
    assert p[TYPES.index("rain")] == pytest.approx(0.5)
    p, _ = memory.pool(*reading(rain=0.9))  # two of three say rain, as sure as the third is not
    assert p[TYPES.index("rain")] == pytest.approx(1 / (1 + 9 ** (-1 / 3)))  # log-odds ln 9 / 3
    assert p[TYPES.index("snow")] == pytest.approx(0.05)


def test_only_the_newest_readings_count():
    memory = WeatherMemory(2)
    for _ in range(5):
        memory.pool(*reading(rain=0.99))
    p, _ = memory.pool(*reading())  # the rain stopped: one old reading is left in the memory
    assert p[TYPES.index("rain")] > 0.5
    p, _ = memory.pool(*reading())
    assert p == pytest.approx(reading()[0])
    memory.readings = 3  # a run-time change applies from the next reading on
    memory.pool(*reading(rain=0.99))
    p, _ = memory.pool(*reading(rain=0.99))
    assert p[TYPES.index("rain")] > 0.5


def test_severity_follows_the_readings_sure_of_the_type():
    heavy, slight = np.array([0.05, 0.05, 0.9]), np.array([0.9, 0.05, 0.05])
    sure, unsure = reading(snow=0.95), reading(snow=0.1)
    sure[1][TYPES.index("snow")], unsure[1][TYPES.index("snow")] = heavy, slight
    memory = WeatherMemory(2)
    memory.pool(*sure)
    _, s = memory.pool(*unsure)
    snow = s[TYPES.index("snow")]
    assert snow.sum() == pytest.approx(1.0) and int(np.argmax(snow)) == SEVERITIES.index("heavy")


def test_clear_forgets_and_bad_sizes_are_refused():
    memory = WeatherMemory(4)
    memory.pool(*reading(haze=0.99))
    memory.clear()
    p, _ = memory.pool(*reading())
    assert p == pytest.approx(reading()[0])
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="at least 1 reading"):
            WeatherMemory(bad)
        with pytest.raises(ValueError, match="at least 1 reading"):
            memory.readings = bad
    assert memory.readings == 4


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_the_estimator_says_what_its_memory_has_seen():
    estimator = BuiltinEstimator()
    frame = np.full((96, 128, 3), 0.5, np.float32)
    frame[:, ::8] = 0.8  # a plain wall: whatever the estimator makes of it alone
    alone = estimator.describe(frame)
    assert estimator.describe(frame, memory=WeatherMemory(1)).text == alone.text
    memory = WeatherMemory(4)
    for _ in range(3):  # three readings of dense fog before this frame
        memory.pool(*reading(haze=0.99))
    pooled = estimator.describe(frame, memory=memory)
    assert "haze" in pooled.text and pooled.labels["haze"] > max(alone.labels["haze"], 0.5)
    assert estimator.remembers
