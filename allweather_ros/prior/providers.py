"""Providers that need no model: a user-given description, and no knowledge at all."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from allweather_ros.description import GENERIC_TEXT, TYPES
from allweather_ros.prior.parse import NO_SEVERITY
from allweather_ros.prior.prior import Encoder, Prior, PriorProvider, prior_from_text


class FixedPrior(PriorProvider):
    """The same user-given description for every frame, e.g. "dense fog" at a fog-prone site.

    The user's statement is taken as certain (confidence 1), so the refresher never coarsens
    it; the labels and severity are parsed from it for the diagnostics. The text never changes,
    so it is parsed and encoded when the provider is made: every refresh, the first included,
    only restamps it and answers within the refresher's watchdog on a loaded CPU, as the
    fallback of a hung provider must.
    """

    name = "fixed"

    def __init__(self, text: str, encoder: Encoder | None = None):
        self.text = text
        self._said = prior_from_text(text, self.name, encoder, confidence=1.0)

    def describe(self, frame: np.ndarray | None = None) -> Prior:
        return _now(self._said)


class NoPrior(PriorProvider):
    """The generic prior: any weather, any severity, confidence 0 (the 'all' granularity).

    Used when nothing is known, and as the target an uncertain estimate is pulled towards.
    """

    name = "none"

    def __init__(self, encoder: Encoder | None = None):
        self._said = Prior(
            text=GENERIC_TEXT,
            labels={t: 0.5 for t in TYPES},
            severity=NO_SEVERITY,
            confidence=0.0,
            provider=self.name,
            tokens=None if encoder is None else encoder.encode(GENERIC_TEXT),
            granularity="all",
        )

    def describe(self, frame: np.ndarray | None = None) -> Prior:
        return _now(self._said)


def _now(prior: Prior) -> Prior:
    """`prior` stamped as made now (its age is what the diagnostics report)."""
    return replace(prior, created_monotonic=time.monotonic(), created_wall=time.time())
