"""Frames read as the newest of a drive through their weather, as the node reads a stream.

On a stream the built-in estimator's types are pooled over its last readings of a camera
(prior/weather_memory.py). An evaluation has frames, not streams, so a drive is simulated: each
frame is read after up to `readings - 1` others with the same key (the same weather, and for
real photos the same source), drawn at random. Distinct scenes are more varied than a camera's
consecutive readings, so a drive gives the most a memory can; a frame alone, the least.
"""
from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from ..prior.weather_memory import WeatherMemory


def drive_estimates(estimates: list[tuple[np.ndarray, np.ndarray]], keys: list[Hashable],
                    readings: int, seed: int = 0
                    ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """For each (probabilities, severity) estimate (BuiltinEstimator.estimate), its
    probabilities pooled with those of up to `readings - 1` others of the same key, its own
    severity, and how many readings were pooled."""
    rng = np.random.default_rng(seed)
    driven = []
    for i, (probabilities, severity) in enumerate(estimates):
        alike = [j for j, key in enumerate(keys) if j != i and key == keys[i]]
        memory = WeatherMemory(readings)
        before = rng.permutation(alike)[:readings - 1]
        for j in before:
            memory.pool(estimates[j][0])
        driven.append((memory.pool(probabilities), severity, len(before) + 1))
    return driven
