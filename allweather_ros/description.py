"""The vocabulary of degradation descriptions shared by the data synthesis and the prior providers.

Training text (from the synthesis) and run-time text (from an estimator) must read alike, so
that the text encoder maps both into the same region of its embedding space.
"""
from __future__ import annotations

from dataclasses import dataclass

TYPES = ("rain", "raindrop", "snow", "haze")
SEVERITIES = ("slight", "moderate", "heavy")

_PHRASES = {
    "rain": "rain streaks",
    "raindrop": "raindrops on the lens",
    "snow": "falling snow",
    "haze": "haze",
}
# Where a degradation lies, as the synthesis measures it (data/synthesis.locate) and says it.
WHOLE_FRAME = "across the whole frame"
LOCATIONS = (
    WHOLE_FRAME,
    "in the upper part of the frame",
    "in the lower part of the frame",
    "on the left side of the frame",
    "on the right side of the frame",
)
# A provider says a type lies across the whole frame once it is this sure of it (the built-in
# estimator's calibrated probability, a free-text claim's belief: prior/parse.py). Providers
# rarely know where weather lies, but the restorer learnt from descriptions that say where (most
# often the whole frame) and reads an unplaced one as a hedge. Validation split, step-66,000
# restorer: told the truth 23.57 dB, the truth unplaced 23.18; the default pipeline 22.26 ->
# 22.55 dB (left-out renderer 20.79 -> 20.93) with the estimator's sure types placed, above the
# no-prior network (22.35 / 20.51). Placing every type said (0.5) gained as much on weather but
# cost clean frames the estimator misreads (mean 91.8 -> 86.6 dB, capped at 100).
PLACED_PROBABILITY = 0.8
CLEAN_TEXT = "The image is clear, with no visible weather degradation."
# What is said when nothing is known: the no-prior ablation, and the generic prior that an
# uncertain estimate is pulled towards.
GENERIC_TEXT = ("The image may be degraded by rain streaks, raindrops on the lens, falling snow "
                "or haze of unknown severity.")


@dataclass(frozen=True)
class Degradation:
    """One degradation in a frame: its type, its severity and, optionally, where it is."""

    type: str
    severity: str
    location: str | None = None

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"unknown degradation type {self.type!r}; expected one of {TYPES}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; expected one of {SEVERITIES}")


def in_type_order(degradations) -> list[Degradation]:
    """`degradations` listed in TYPES order, as the training descriptions list them."""
    return sorted(degradations, key=lambda d: TYPES.index(d.type))


def describe(degradations: list[Degradation] | tuple[Degradation, ...]) -> str:
    """The sentence a good vision-language model would answer for these degradations."""
    if not degradations:
        return CLEAN_TEXT
    parts = []
    for d in degradations:
        part = f"{d.severity} {_PHRASES[d.type]}"
        if d.location:
            part += f" {d.location}"
        parts.append(part)
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"The image is degraded by {listed}."


def placed(belief: float, stated: str | None = None,
           sure: float = PLACED_PROBABILITY) -> str | None:
    """Where a provider says a type lies: where it `stated`, else the whole frame once its
    `belief` in the type reaches `sure`, else nowhere (a hedge)."""
    return stated or (WHOLE_FRAME if belief >= sure else None)
