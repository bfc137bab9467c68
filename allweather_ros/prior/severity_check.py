"""A VLM's rain severity word weighed against the built-in estimator's reading of the frame.

Told "heavy rain" of light rain, the restorer scrubs the frame (about 2.6 dB lost on held-out
slight rain), and VLMs overstate severity easily. Before the restorer hears it, the word is
taken as evidence, not as the truth: right with probability WORD_RELIABILITY[0], a tier off
with [1], two with [2]; multiplied into the estimator's severity distribution for rain, the
least costly word under that posterior (`builtin.severity_choice`, rain's prices) is said.

Rain alone (CHECKED_TYPES): on our renderers the check also helped snow and lens drops, but on
the real photographs (docs/real_weather_set.md) the estimator reads their severity too low and
would take back a right "heavy" (snow 7 of 7, lens drops 24 of 27), and it would revise haze
on the renderers too (experiment log, thirty-first session). Real heavy rain keeps its word.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from allweather_ros.description import SEVERITIES, TYPES, Degradation, describe
from allweather_ros.prior.builtin import BuiltinEstimator, severity_choice
from allweather_ros.prior.parse import parse
from allweather_ros.prior.prior import Encoder, Prior, PriorProvider

CHECKED_TYPES = ("rain",)
WORD_RELIABILITY = (0.70, 0.25, 0.05)  # the word right, a tier off, two tiers off


def checked_word(said: str, distribution: np.ndarray, weather: str) -> str:
    """The severity to say of `weather` when a provider said `said` and the estimator's
    severity distribution for it (over SEVERITIES) is `distribution`."""
    tiers = np.arange(len(SEVERITIES))
    likelihood = np.asarray(WORD_RELIABILITY)[np.abs(tiers - SEVERITIES.index(said))]
    posterior = likelihood * np.asarray(distribution, np.float64)
    return SEVERITIES[severity_choice(posterior / posterior.sum(), weather)]


def checked_degradations(degradations, severity: np.ndarray) -> list[Degradation]:
    """`degradations` with each checked type's severity weighed against `severity` (the
    estimator's per-type distributions, (len(TYPES), len(SEVERITIES)))."""
    return [replace(d, severity=checked_word(d.severity, severity[TYPES.index(d.type)], d.type))
            if d.type in CHECKED_TYPES else d for d in degradations]


def checked_prior(prior: Prior, severity: np.ndarray, encoder: Encoder | None) -> Prior:
    """`prior` with its checked types' severities weighed against `severity`; the prior itself
    when its text is not one the parser recognises or nothing changes. The provider's own
    words (parsed again, as `prior_from_text` read them) stay in `source_text`."""
    parsed = parse(prior.source_text or prior.text)
    if parsed.confidence == 0.0:
        return prior
    said = parsed.degradations()
    checked = checked_degradations(said, severity)
    if checked == said:
        return prior
    text = describe(checked)
    worst = max((d.severity for d in checked), key=SEVERITIES.index)
    return replace(prior, text=text, severity=worst,
                   tokens=None if encoder is None else encoder.encode(text),
                   source_text=prior.source_text or prior.text)


class SeverityChecked(PriorProvider):
    """`provider` (a VLM) whose rain severity is checked by `estimator` on the same frame
    (`checked_prior`); the refresher sees one provider, under the VLM's name."""

    def __init__(self, provider: PriorProvider, estimator: BuiltinEstimator,
                 encoder: Encoder | None):
        if getattr(provider, "token_source", "text_encoder") != "text_encoder":
            raise ValueError("a severity check rewrites the text, so the prior's tokens must "
                             "come from the text encoder, not from the VLM's hidden states")
        self.provider, self.estimator, self.encoder = provider, estimator, encoder
        self.name = provider.name

    def describe(self, frame: np.ndarray) -> Prior:
        prior = self.provider.describe(frame)
        return checked_prior(prior, self.estimator.estimate(frame)[1], self.encoder)
