"""Fit the built-in estimator's type calibration (prior/calibration.py) and report what it did.

The fit sees the real photos of one fold (a hash of the file name puts each photo in "fit" or
"check"; photos marked `calibrate: false` are never fitted on) and synthetic validation frames
(validation scenes, training renderers, through a random camera, a third of them clean: the
hard negatives that four clean real photos cannot provide), the two weighted alike; the floor
below which a frame is called clear is then set on the fit fold's weather photos
(`choose_floor`). The severity heads' shift along the tiers is fitted on the same frames, on
those whose severity is labelled. The real "check" fold is scored before and after, so the
figures are not of photos the fit saw. The fit is for one reading of the frame (`--tile-side`,
prior/builtin.py) and is stored with it.

    python -m allweather_ros.evaluation.calibrate --real ~/.cache/allweather_ros/real_weather \
        --weights checkpoints/estimator/estimator.safetensors --out calibrated.safetensors
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from ..data.datasets import SyntheticWeatherDataset
from ..data.sources import default_scenes
from ..description import SEVERITIES, TYPES
from ..media import read_rgb
from ..model.weights import read_metadata
from ..prior.builtin import BuiltinEstimator
from ..prior.calibration import choose_floor, fit, fit_severity, logits_of
from .real import describe_photos, fold, load_labels, score

VALIDATION_FRAMES = 400
# Tiles a little larger than the estimator's 160-pixel training crops: of 160, 192, 256, 320 and
# whole frames, 192 named the type of most real photos of the check fold (76.7% vs 66.7% whole).
TILE_SIDE = 192


def validation_frames(count: int = VALIDATION_FRAMES, seed: int = 7):
    """(frame, present types, severity tiers or -1) of synthetic validation frames, a third of
    them clean."""
    data = SyntheticWeatherDataset(default_scenes(), "val", crop=256, seed=seed, length=count,
                                   wrong_description_p=0.0, clean_p=0.33, camera_p=0.5,
                                   exposure_p=0.3, flips=False)
    for item in data:
        yield (item["degraded"].permute(1, 2, 0).numpy(), item["types"].numpy() > 0.5,
               item["severity"].numpy())


def calibrate(weights: str | Path, real: str | Path, out: str | Path,
              tile_side: int = TILE_SIDE) -> dict:
    """Fit on the "fit" fold plus validation frames for the reading `tile_side`, write `out`
    (the weights with the calibration in their metadata) and return the check fold's figures
    before (the weights as they were) and after."""
    raw = BuiltinEstimator(weights, calibrated=False, tile_side=tile_side)
    photos = load_labels(real)
    fitting = [p for p in photos if fold(p) == "fit"]
    checking = [p for p in photos if fold(p) == "check"]
    logits, severities, present, tiers, weights_ = [], [], [], [], []

    def add(frame, types, tier, weight):
        probabilities, severity = raw.estimate(frame)
        logits.append(logits_of(probabilities))
        severities.append(np.log(np.clip(severity, 1e-6, 1.0)))
        present.append(types)
        tiers.append(tier)
        weights_.append(weight)

    for photo in fitting:
        add(read_rgb(photo.file), [t in photo.types for t in TYPES],
            [SEVERITIES.index(photo.types[t]) if photo.types.get(t) else -1 for t in TYPES],
            1.0 / len(fitting))
    synthetic = list(validation_frames())
    for frame, types, tier in synthetic:
        add(frame, types, tier, 1.0 / len(synthetic))
    calibration = fit(np.array(logits), np.array(present), np.array(weights_))
    calibration = replace(calibration, tile_side=tile_side, severity_shift=fit_severity(
        np.array(severities), np.array(tiers), np.array(weights_)))
    weather = np.array([any(p) for p in present[:len(fitting)]])
    tops = calibration.probabilities(np.array(logits[:len(fitting)])).max(axis=1)
    calibration = replace(calibration, floor=min(0.5, choose_floor(tops[weather])))
    state = load_file(str(weights))
    metadata = {k: json.dumps(v) for k, v in read_metadata(weights).items()}
    metadata["calibration"] = json.dumps(
        {**calibration.to_json(), "fitted_on": {"real_photos": len(fitting),
                                                "validation_frames": len(synthetic)}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=metadata)
    before = score(describe_photos(BuiltinEstimator(weights), checking))
    after = score(describe_photos(BuiltinEstimator(out), checking))
    return {"calibration": calibration.to_json(), "fit_photos": len(fitting),
            "check_photos": len(checking), "before": before, "after": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, help="labelled real photos (labels.json)")
    parser.add_argument("--weights", required=True, help="estimator weights to calibrate")
    parser.add_argument("--out", required=True, help="calibrated weights file to write")
    parser.add_argument("--tile-side", type=int, default=TILE_SIDE,
                        help="read frames in tiles of this many pixels for rain, lens drops "
                             "and snow (0: whole frames only)")
    args = parser.parse_args(argv)
    result = calibrate(args.weights, args.real, args.out, args.tile_side)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
