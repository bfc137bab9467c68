"""A prior provider's reading of held-out synthetic frames, scored exactly as real photos are
(evaluation/real.py), so that the two stand side by side: the synthetic figures say what the
provider learnt, the real ones whether it carries over to weather nobody rendered.

The frames: the test scenes under one weather at a time (every type at every severity) or none
(a third of them), half of the views through a random camera and some re-exposed, as the
built-in estimator was trained; drawn once by the training renderers and once by the renderer
left out of training. A frame's truth is the weather that was added, so top-1, recall, severity
accuracy, "heavy" said of slight weather and clean frames called clean mean what they mean on
the real set.
"""
from __future__ import annotations

from collections.abc import Callable

from ..data.datasets import TEST_SEED, SyntheticWeatherDataset
from ..data.sources import Scene
from ..data.weather import EXTERNAL
from ..description import SEVERITIES, TYPES, Degradation
from ..prior.batch import prior_record
from ..prior.prior import PriorProvider
from .real import score
from .scoring import degradations_of, hwc

RENDERER_SETS = {"training renderers": None, "left-out renderer": dict.fromkeys(TYPES, EXTERNAL)}
CLEAN_SHARE = 1 / 3
CROP = 256  # pixels: read by the provider in several tiles, as a camera's


def recipes() -> list[list[Degradation]]:
    """Every type alone at every severity, and weather-free frames for a third of the list."""
    weather = [[Degradation(t, s)] for t in TYPES for s in SEVERITIES]
    return weather + [[]] * round(len(weather) * CLEAN_SHARE / (1 - CLEAN_SHARE))


def describe_frames(provider: PriorProvider, scenes: list[Scene], renderers: dict | None,
                    repeats: int, progress: Callable[[], None] | None = None) -> list[dict]:
    """The provider's record (batch.prior_record) of each frame, with the frame's truth in the
    form of the real set's labels (type -> severity; empty for a clean frame)."""
    grid = recipes()
    frames = SyntheticWeatherDataset(
        scenes, "test", crop=CROP, seed=TEST_SEED + 2, length=len(grid) * repeats,
        wrong_description_p=0.0, flips=False, recipes=grid, renderers=renderers,
        camera_p=0.5, exposure_p=0.3)
    records = []
    for item in frames:
        truth = {d.type: d.severity for d in degradations_of(item)}
        record = prior_record(provider.describe(hwc(item["degraded"])))
        records.append({"scene": item["scene"], "renderers": item["renderers"],
                        "truth": truth, **record})
        if progress is not None:
            progress()
    return records


def evaluate_synthetic_prior(provider: PriorProvider, scenes: list[Scene], repeats: int = 4,
                             progress: Callable[[], None] | None = None) -> dict:
    """`real.score`'s figures for each renderer set (RENDERER_SETS), `repeats` frames a recipe."""
    return {name: score(describe_frames(provider, scenes, renderers, repeats, progress))
            for name, renderers in RENDERER_SETS.items()}


def frames_per_set(repeats: int) -> int:
    return len(recipes()) * repeats
