"""Calibration of the built-in estimator's type probabilities (Platt scaling, one per type).

A network trained on rendered weather is overconfident about its renderers' tells and unsure on
real photos: its "70% lens drops" is not right 70% of the time. A per-type scale and shift of
the type logit, p = sigmoid(scale * logit + shift), fitted on labelled frames (real photos set
aside for calibration and synthetic validation frames, clean ones among them), makes the
probabilities mean what they say, and the 0.5 threshold then sits where the errors balance. The
fit is pulled towards the identity (scale 1, shift 0), so a type with few labelled photos moves
little. It travels in the estimator's weights file, as metadata.

The severity heads get the same treatment with one number per type: a shift along the tiers
(slight -1, moderate 0, heavy +1 added to the tier logits, times the shift). Rendered weather
teaches a severity scale of its own; on real photos the heads said "slight" of most moderate
and heavy weather, and one shift per type, fitted on labelled photos, moves the whole scale.

The calibration also records how the frame was read when it was fitted (`tile_side`: whole, or
in tiles for the particle weathers, prior/builtin.py), since its numbers hold for that reading
only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allweather_ros.description import TYPES

TIER_AXIS = np.array([-1.0, 0.0, 1.0])  # slight, moderate, heavy: the direction a shift moves
MIN_FOUND = 0.85  # weather photos that must not be called clear: the shipped estimator found 82%
PULL = 20.0  # the pull towards the identity weighs as much as this many labelled frames


@dataclass(frozen=True)
class TypeCalibration:
    """`floor`: when no type reaches the estimator's threshold, the most probable one is still
    said if its calibrated probability reaches this; a frame is called clear only below it
    (1.0: never). Missing weather costs the restorer its whole gain, while a restorer trained
    on overstated descriptions of clear frames leaves them nearly as they are."""

    scale: tuple[float, ...] = (1.0,) * len(TYPES)
    shift: tuple[float, ...] = (0.0,) * len(TYPES)
    floor: float = 1.0
    severity_shift: tuple[float, ...] = (0.0,) * len(TYPES)
    tile_side: int = 0  # the reading fitted under: 0 the whole frame, else tiles of this side

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of type logits (..., len(TYPES))."""
        z = np.asarray(logits, np.float64) * np.array(self.scale) + np.array(self.shift)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def severities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated per-type severity distributions of tier logits (..., len(TYPES), 3)."""
        z = np.asarray(logits, np.float64) + np.array(self.severity_shift)[:, None] * TIER_AXIS
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    def to_json(self) -> dict:
        return {"types": list(TYPES), "scale": list(self.scale), "shift": list(self.shift),
                "floor": self.floor, "severity_shift": list(self.severity_shift),
                "tile_side": self.tile_side}

    @classmethod
    def from_json(cls, data: dict | None) -> TypeCalibration:
        """The calibration stored in a weights file; the identity when there is none."""
        if not data:
            return cls()
        if list(data["types"]) != list(TYPES):
            raise ValueError(f"calibration is for types {data['types']}, expected {TYPES}")
        return cls(tuple(map(float, data["scale"])), tuple(map(float, data["shift"])),
                   float(data.get("floor", 1.0)),
                   tuple(map(float, data.get("severity_shift", (0.0,) * len(TYPES)))),
                   int(data.get("tile_side", 0)))


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit(logits: np.ndarray, present: np.ndarray, weights: np.ndarray | None = None,
        pull: float = PULL) -> TypeCalibration:
    """Per type, the scale and shift minimising the weighted log-loss of `present` (N, T bools)
    under `logits` (N, T), plus `pull` x the squared distance from the identity."""
    from scipy.optimize import minimize  # here: it costs 50 MB, and only fitting needs it

    logits, present = np.asarray(logits, np.float64), np.asarray(present, np.float64)
    weights = np.ones(len(logits)) if weights is None else np.asarray(weights, np.float64)
    weights = weights / weights.sum()
    scales, shifts = [], []
    for t in range(logits.shape[1]):
        x, y = logits[:, t], present[:, t]

        def loss(params, x=x, y=y):
            z = params[0] * x + params[1]
            nll = np.logaddexp(0.0, z) - y * z
            return float(weights @ nll + pull / len(x) * ((params[0] - 1) ** 2 + params[1] ** 2))

        best = minimize(loss, np.array([1.0, 0.0]), method="L-BFGS-B",
                        bounds=[(0.05, 5.0), (-8.0, 8.0)])
        scales.append(float(best.x[0]))
        shifts.append(float(best.x[1]))
    return TypeCalibration(tuple(scales), tuple(shifts))


def fit_severity(log_probabilities: np.ndarray, tiers: np.ndarray,
                 weights: np.ndarray | None = None, pull: float = PULL) -> tuple[float, ...]:
    """Per type, the shift along the tiers minimising the weighted log-loss of the labelled
    `tiers` (N, T; index into SEVERITIES, -1 where the type is absent or its severity unjudged)
    under the severity heads' `log_probabilities` (N, T, 3), plus `pull` x the squared shift
    (per labelled frame of that type)."""
    from scipy.optimize import minimize  # as in fit

    log_probabilities = np.asarray(log_probabilities, np.float64)
    tiers = np.asarray(tiers)
    weights = np.ones(len(tiers)) if weights is None else np.asarray(weights, np.float64)
    shifts = []
    for t in range(tiers.shape[1]):
        rows = np.flatnonzero(tiers[:, t] >= 0)
        if len(rows) == 0:
            shifts.append(0.0)
            continue
        z0, y, w = log_probabilities[rows, t], tiers[rows, t], weights[rows] / weights[rows].sum()

        def loss(params, z0=z0, y=y, w=w):
            z = z0 + params[0] * TIER_AXIS
            nll = np.logaddexp.reduce(z, axis=-1) - z[np.arange(len(y)), y]
            return float(w @ nll + pull / len(y) * params[0] ** 2)

        best = minimize(loss, np.array([0.0]), method="L-BFGS-B", bounds=[(-4.0, 4.0)])
        shifts.append(float(best.x[0]))
    return tuple(shifts)


def choose_floor(top_probabilities: np.ndarray, found: float = MIN_FOUND) -> float:
    """The highest floor at which a share `found` of weather frames (their calibrated top
    type probabilities) is still said to have weather."""
    return float(np.quantile(np.asarray(top_probabilities, np.float64), 1.0 - found))
