"""What a stage that gives back part of the input after the network (lights.py, markings.py)
costs where there is nothing of its own to keep: the synthetic validation frames of both
renderer sets, restored told the truth, with and without it."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.datasets import synthetic_test_set
from ..data.sources import default_scenes, scenes_in_split
from ..data.weather import EXTERNAL
from ..description import TYPES, describe
from .scoring import Restorer, degradations_of, hwc, psnr

Keeper = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, float]]
"""(input frame, restored frame) -> (restored frame with what was kept, share of pixels)."""


def keeper_cost(keeper: Keeper, restorer: Restorer, val_seed: int, repeats: int,
                before: tuple[Keeper, ...] = ()) -> dict:
    """Per renderer set: frames, frames `keeper` acted on, and the PSNR it moved them by (mean,
    worst, how many fell more than 0.1 dB), after the network and the keepers `before` it in
    the pipeline's order."""
    scenes = scenes_in_split(default_scenes(), "val")
    report = {}
    for name, renderers in (("training renderers", None),
                            ("left-out renderer", dict.fromkeys(TYPES, EXTERNAL))):
        test = synthetic_test_set(scenes, crop=256, repeats=repeats, renderers=renderers,
                                  split="val", seed=val_seed)
        moved, touched = [], 0
        for item in test:
            degraded, clean = hwc(item["degraded"]), hwc(item["clean"])
            alone = restorer(item["degraded"], describe(degradations_of(item)))[0]
            for earlier in before:
                alone = earlier(degraded, alone)[0]
            kept = keeper(degraded, alone)[0]
            touched += bool(np.any(kept != alone))
            moved.append(psnr(kept, clean) - psnr(alone, clean))
        moved = np.array(moved)
        report[name] = {"frames": len(moved), "touched": touched, "mean_db": float(moved.mean()),
                        "worst_db": float(moved.min()), "worse": int((moved < -0.1).sum())}
    return report


def cost_lines(report: dict, what: str) -> list[str]:
    """keeper_cost's report as a line per renderer set."""
    return [f"{name}: {r['frames']} frames, {what} acted on {r['touched']}, "
            f"{r['mean_db']:+.4f} dB on average, worst {r['worst_db']:+.3f}, "
            f"{r['worse']} more than 0.1 dB below without it" for name, r in report.items()]
