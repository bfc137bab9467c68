"""Do no harm: what a wrong severity word or a false haze costs the restorer, and what it does
to frames with little or no weather (their PSNR gain, and their tones, which PSNR averages away
on busy frames)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import cv2
import numpy as np
from tqdm import tqdm

from ..description import GENERIC_TEXT, SEVERITIES, Degradation, describe, in_type_order
from ..prior.severity_check import checked_degradations
from .scoring import (
    Restorer,
    degradations_of,
    group_of,
    hwc,
    psnr,
    standard_error,
)

TONE_BLUR = 1 / 8  # Gaussian sigma as a share of the shorter side: only tones and colour remain
# Said beside the truth of frames without haze: the built-in estimator's commonest false call,
# at its commonest false severity; told haze, a restorer may lift the contrast of the whole frame.
FALSE_HAZE = Degradation("haze", "moderate")


def _moved(degradations, tiers: int = 1, to: str | None = None):
    """Every severity moved `tiers` tiers (or all set to `to`), within the scale; None when
    nothing moves."""
    def tier(d):
        return min(len(SEVERITIES) - 1, max(0, SEVERITIES.index(d.severity) + tiers))

    moved = [replace(d, severity=to or SEVERITIES[tier(d)]) for d in degradations]
    return None if moved == list(degradations) else moved


def tone_error(image: np.ndarray, clean: np.ndarray) -> float:
    """Mean absolute difference of the heavily blurred frames: global colour and contrast."""
    sigma = TONE_BLUR * min(image.shape[:2])
    blur = [cv2.GaussianBlur(np.ascontiguousarray(x), (0, 0), sigma) for x in (image, clean)]
    return float(np.abs(blur[0] - blur[1]).mean())


def harm_report(full, test, encoder, estimator=None) -> dict:
    """Over the frames of `test` (true descriptions known), the full network told:
    the truth, every severity one tier too high and too low, "heavy" (frames with only slight
    weather), the generic text, and the truth with FALSE_HAZE (frames without haze). Costs are
    PSNR(told the truth) - PSNR(told that), in dB, over the frames with weather: a clean frame
    told the truth may come back untouched (PSNR capped at PSNR_CAP), so clean frames told the
    generic text or the false haze are given as their PSNR. Each cost is also given per group
    of frames (a type, or mixtures): a mean over all frames hides which weather pays it.
    With the built-in `estimator`, the truth and the wrong severities are also told as a VLM's
    words reach the restorer, checked against the estimator's reading (prior/severity_check.py):
    their costs under the same names with "_checked" added."""
    restore = Restorer(full, encoder)
    costs = defaultdict(lambda: defaultdict(list))  # told -> group -> cost per frame
    slight_gain = defaultdict(list)
    clean_psnr, clean_generic_psnr, clean_hazed_psnr = [], [], []
    tones = defaultdict(lambda: {"input": [], "restored": []})
    for item in tqdm(test, desc="harm", leave=False):
        truth = degradations_of(item)
        degraded, clean = hwc(item["degraded"]), hwc(item["clean"])
        said = {"truth": truth}
        if truth and (over := _moved(truth, +1)):
            said["one_tier_higher"] = over
        if truth and (under := _moved(truth, -1)):
            said["one_tier_lower"] = under
        light = all(d.severity == "slight" for d in truth)
        if truth and light:
            said["heavy"] = _moved(truth, to="heavy")
        told = {name: describe(d) for name, d in said.items()} | {"generic": GENERIC_TEXT}
        if truth and estimator is not None:
            severity = estimator.estimate(degraded)[1]
            told |= {f"{name}_checked": describe(checked_degradations(d, severity))
                     for name, d in said.items()}
        if all(d.type != FALSE_HAZE.type for d in truth):
            told["false_haze"] = describe(in_type_order([*truth, FALSE_HAZE]))
        by_text = {text: restore(item["degraded"], text)[0] for text in set(told.values())}
        restored = {name: by_text[text] for name, text in told.items()}
        psnr_of = {name: psnr(out, clean) for name, out in restored.items()}
        group = group_of(truth)
        if not truth:
            clean_psnr.append(psnr_of["truth"])
            clean_generic_psnr.append(psnr_of["generic"])
            clean_hazed_psnr.append(psnr_of["false_haze"])
        else:
            for name in told.keys() - {"truth"}:
                costs[name][group].append(psnr_of["truth"] - psnr_of[name])
            if light and group != "mixture":
                slight_gain[group].append(psnr_of["truth"] - psnr(degraded, clean))
        if light and group in ("clean", "rain", "snow"):
            tones[group]["input"].append(tone_error(degraded, clean))
            tones[group]["restored"].append(tone_error(restored["truth"], clean))

    def summary(values):
        return {"mean": float(np.mean(values)), "se": standard_error(values),
                "worst": float(np.max(values)), "n": len(values)}

    def lowest(values):
        return {"mean": float(np.mean(values)), "lowest": float(np.min(values)),
                "n": len(values)} if values else None

    # Sorted, as every table here: results.json then diffs cleanly between runs.
    return {
        "cost_db": {name: summary([c for v in by_group.values() for c in v])
                    for name, by_group in sorted(costs.items())},
        "cost_db_by_group": {name: {g: summary(v) for g, v in sorted(by_group.items())}
                             for name, by_group in sorted(costs.items())},
        "clean_psnr": lowest(clean_psnr),
        "clean_generic_psnr": lowest(clean_generic_psnr),
        "clean_false_haze_psnr": lowest(clean_hazed_psnr),
        "slight_gain_db": {g: float(np.mean(v)) for g, v in sorted(slight_gain.items())},
        "tone_error": {g: {k: float(np.mean(v)) for k, v in t.items()} | {"n": len(t["input"])}
                       for g, t in sorted(tones.items())},
    }
