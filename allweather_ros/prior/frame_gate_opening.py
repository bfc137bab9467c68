"""How far a prior holds the restorer's frame gate open (`model.network.FrameGate`).

The frame gate scales the restorer's correction by how far the frame bears it out, so that a
wrong "heavy" costs a light frame little (#17). It also closes on real rain streaks, which look
unlike the rendered ones it was fitted on (`tools/real_restoration_check.py`: the estimator
reads 0.34 rain on the restored real rain photos, 0.23 without the gate). The built-in
estimator's own reading of heavy rain is evidence from the frame that the gate does not have,
so where the estimator says heavy rain the gate stands aside. A word alone does not open it:
a VLM's or a user's "heavy" may be wrong, and that is what the gate is for. Measured in the
model card ("The frame gate stands aside where the estimator reads heavy rain").
"""
from __future__ import annotations

from ..description import SEVERITIES
from .builtin import BuiltinEstimator
from .parse import parse
from .prior import Prior

OPENED_BY = {"rain": "heavy"}
"""The types whose reading by the built-in estimator opens the gate, at this severity or more."""


def frame_gate_opening(prior: Prior) -> float:
    """1 where `prior` is the built-in estimator's and says a type of OPENED_BY at its
    severity, else 0 (the gate left to the frame)."""
    if prior.provider != BuiltinEstimator.name:
        return 0.0
    said = parse(prior.text).severities
    return float(any(said.get(kind) in SEVERITIES[SEVERITIES.index(least):]
                     for kind, least in OPENED_BY.items()))
