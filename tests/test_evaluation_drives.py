"""Drives simulated for evaluations: each frame's types pooled with others of its key."""
import numpy as np
import pytest

from allweather_ros.evaluation.drives import drive_estimates


def test_each_frame_pools_with_others_of_its_key_and_keeps_its_severity():
    rng = np.random.default_rng(0)
    estimates = [(rng.uniform(0.05, 0.95, 4), rng.dirichlet(np.ones(3), 4)) for _ in range(5)]
    keys = ["rain", "rain", "rain", "clean", "rain"]
    driven = drive_estimates(estimates, keys, readings=4)
    assert [pooled for _, _, pooled in driven] == [4, 4, 4, 1, 4]
    p, s, _ = driven[3]  # alone in its weather: as it was read
    assert p == pytest.approx(estimates[3][0]) and s is estimates[3][1]
    driven = drive_estimates(estimates, keys, readings=3)
    rain = [i for i, key in enumerate(keys) if key == "rain"]
    for i in rain:
        p, s, pooled = driven[i]
        assert pooled == 3 and s is estimates[i][1]
        logits = [np.log(q / (1 - q)) for q, _ in (estimates[j] for j in rain)]
        # the pooled log-odds lie between those of the rain frames it could have drawn
        assert (np.log(p / (1 - p)) <= np.max(logits, 0) + 1e-9).all()
        assert (np.log(p / (1 - p)) >= np.min(logits, 0) - 1e-9).all()
    assert all(np.allclose(a[0], b[0]) for a, b in zip(
        drive_estimates(estimates, keys, readings=1), estimates, strict=True))
    again = drive_estimates(estimates, keys, readings=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, driven, strict=True))
