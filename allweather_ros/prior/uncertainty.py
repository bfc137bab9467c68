"""An uncertain estimate falls back to a coarser claim instead of committing to a wrong one.

UniRestorer routes a frame whose degradation estimate is unreliable to a coarser-grained
expert (degree -> type -> all). Here the prior's text is the router, so the same idea is applied
to the text: below `threshold` confidence the severity is withheld (the type's central
severity, "moderate", is stated instead) and, below half of it, the generic prior replaces the
estimate. The labels are blended linearly toward the generic ones for the diagnostics.

Why a coarser *text* rather than a weight for mixing token embeddings: the restorer is trained
on the tokens of real descriptions, and a convex mix of two token sequences of different
lengths is neither a description nor something it has seen; a coarser sentence is both, and the
pipeline keeps precomputing one set of keys/values per prior.
"""
from __future__ import annotations

from dataclasses import replace

from allweather_ros.description import TYPES, Degradation, describe
from allweather_ros.options import DEFAULT_MIN_CONFIDENCE  # noqa: F401  its home; kept importable
from allweather_ros.prior.prior import Encoder, Prior

TYPE_SEVERITY = "moderate"


def coarsen(prior: Prior, generic: Prior, threshold: float, encoder: Encoder | None) -> Prior:
    """`prior` itself if its confidence reaches `threshold`, else its coarser version (see the
    module docstring). `encoder` makes the tokens of a type-level text (None: text-only)."""
    if prior.confidence >= threshold or prior.granularity == "all":
        return prior
    trust = prior.confidence / threshold
    labels = {t: trust * prior.labels[t] + (1 - trust) * generic.labels[t] for t in TYPES}
    present = [t for t in TYPES if prior.labels[t] > 0.5]
    if trust >= 0.5 and present:
        text = describe([Degradation(t, TYPE_SEVERITY) for t in present])
        tokens = None if encoder is None else encoder.encode(text)
        return replace(prior, text=text, labels=labels, severity=TYPE_SEVERITY, tokens=tokens,
                       granularity="type")
    return replace(prior, text=generic.text, labels=labels, severity=generic.severity,
                   tokens=generic.tokens, granularity="all")
