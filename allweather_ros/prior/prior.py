"""What a degradation prior is, and the one interface every prior provider implements.

A prior is computed at a low rate beside the frame path and reused by every frame until the
next one is swapped in, so it carries its own creation time (to report its age) and everything
the pipeline and the diagnostics need: the text, its tokens, per-type probabilities, severity
and how confident the provider was.
"""
from __future__ import annotations

import abc
import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.prior.parse import NO_SEVERITY, parse

GRANULARITIES = ("degree", "type", "all")


def _finite(tokens) -> bool:
    """Whether every token value is finite, for numpy arrays and torch tensors alike."""
    if hasattr(tokens, "isfinite"):  # torch, whose tensors may live on a GPU
        return bool(tokens.isfinite().all())
    return bool(np.isfinite(tokens).all())


class Encoder(Protocol):
    """Anything that turns a description into (L, C_txt) prior tokens: a torch tensor
    (TextEncoder) or a numpy array (the torch-free OnnxTextEncoder)."""

    def encode(self, text: str): ...


@dataclass(frozen=True)
class Prior:
    """One degradation prior, immutable so that it can be shared across threads without locks.

    `tokens` is (L, C_txt) with every row valid (batch several with `pad_tokens`), or None for a
    text-only prior that the consumer encodes itself. `severity` is one of SEVERITIES or
    "none": no severity asserted (a clean frame, or an unknown one: `confidence` tells which).
    """

    text: str
    labels: dict[str, float]
    severity: str
    confidence: float
    provider: str
    tokens: Any = None  # a numpy array or a CPU torch tensor, as the encoder gives
    granularity: str = "degree"
    """How specific the prior's claim is (UniRestorer's levels): "degree" (type and severity),
    "type" (severity withheld as uncertain) or "all" (no claim: the generic prior)."""
    source_text: str | None = None
    """The provider's own words when `text` restates them (a VLM's answer, a user's note)."""
    created_monotonic: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)

    def __post_init__(self):
        if set(self.labels) != set(TYPES):
            raise ValueError(f"labels must give a probability for each of {TYPES}: {self.labels}")
        if any(not 0.0 <= p <= 1.0 for p in self.labels.values()):
            raise ValueError(f"label probabilities must lie in [0, 1]: {self.labels}")
        if self.severity not in (*SEVERITIES, NO_SEVERITY):
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES} or 'none'")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity {self.granularity!r} is not one of {GRANULARITIES}")
        if self.tokens is not None and self.tokens.ndim != 2:
            raise ValueError(f"tokens must be (L, C_txt), got shape {tuple(self.tokens.shape)}")
        if self.tokens is not None and not _finite(self.tokens):
            raise ValueError("tokens hold NaN or infinite values")

    def names(self, kind: str) -> bool:
        """Whether the restorer may hear weather of type `kind` in this prior: its words name
        it, or its probability is 0.5 or more (as the generic prior and words the parser does
        not know give every type: no claim that rules it out)."""
        return (self.granularity == "all" or self.labels[kind] >= 0.5
                or kind in _named(self.text))

    def age(self, now: float | None = None) -> float:
        """Seconds since this prior was made (monotonic clock)."""
        return (time.monotonic() if now is None else now) - self.created_monotonic

    def to_json(self) -> str:
        """The prior as published on the ROS prior topic and printed by `allweather describe`."""
        return json.dumps(
            {
                "text": self.text,
                "source_text": self.source_text,
                "labels": {t: round(self.labels[t], 4) for t in TYPES},
                "severity": self.severity,
                "confidence": round(self.confidence, 4),
                "provider": self.provider,
                "granularity": self.granularity,
                "stamp": self.created_wall,
                "tokens": None if self.tokens is None else list(self.tokens.shape),
            }
        )


@functools.lru_cache(maxsize=64)
def _named(text: str) -> frozenset[str]:
    """The types a description names (parsed once per text: a prior serves many frames)."""
    return frozenset(parse(text).severities)


def prior_from_text(
    text: str,
    provider: str,
    encoder: Encoder | None = None,
    confidence: float | None = None,
) -> Prior:
    """A prior for a free-text description: fields parsed from it, tokens from `encoder`.

    A recognised description is restated in the training descriptions' words (the tokens the
    restorer learnt); `source_text` keeps the original. Unrecognised text is encoded as given.
    `confidence` overrides the parser's (a user-given description is taken as certain).
    """
    parsed = parse(text)
    canonical = parsed.canonical_text() or text
    return Prior(
        text=canonical,
        labels=parsed.labels,
        severity=parsed.severity,
        confidence=parsed.confidence if confidence is None else confidence,
        provider=provider,
        tokens=None if encoder is None else encoder.encode(canonical),
        source_text=None if canonical == text else text,
    )


class PriorProvider(abc.ABC):
    """Describes what degrades a frame. Slow implementations are fine: the refresher runs them
    off the frame path."""

    name: str = "provider"
    remembers: bool = False
    """Whether `describe` also takes a camera's `memory=` (prior/weather_memory.py) and pools
    its readings over the stream."""

    @abc.abstractmethod
    def describe(self, frame: np.ndarray) -> Prior:
        """Prior for one float32 RGB frame of shape (H, W, 3) with values in [0, 1]."""
