"""Describing many images in one run: `allweather describe` on folders, and the real-photo
evaluation.

Someone triaging a dataset or a fleet's snapshots points it at thousands of files, some of them
truncated or mislabelled, so one unreadable file gets an error line of its own and the run goes
on; the run ends with a summary. Every line says the same things whichever provider spoke: the
types it says are present, each one's severity, its probabilities and its confidence.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from allweather_ros.description import TYPES
from allweather_ros.media import IMAGE_SUFFIXES, read_rgb
from allweather_ros.prior.parse import NO_SEVERITY, parse
from allweather_ros.prior.prior import Prior, PriorProvider

PRESENT = 0.5
"""A type counts as said to be present from this probability on: the built-in estimator's
default threshold, and the parser's line between affirmed and not."""


def image_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Folders become the images under them (recursively, sorted, by suffix); a path named
    explicitly is kept as given, so that a missing or broken one is reported, not skipped."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*")
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def prior_record(prior: Prior) -> dict:
    """What a prior says, as one JSON-ready dict: `types` present (in TYPES order), each one's
    severity ("none" where the prior withholds it), probabilities, confidence, text. A
    degree-level prior's types are those its text names (what the restorer is told: the
    built-in estimator may name an unsure frame's likeliest weather below `PRESENT`); a
    coarsened one's, those its probabilities reach `PRESENT` with."""
    said = parse(prior.text).severities if prior.granularity == "degree" else {}
    present = ([t for t in TYPES if t in said] if prior.granularity == "degree"
               else [t for t in TYPES if prior.labels[t] >= PRESENT])
    return {
        "types": present,
        "severity": {t: said.get(t, NO_SEVERITY) for t in present},
        "labels": {t: round(prior.labels[t], 4) for t in TYPES},
        "confidence": round(prior.confidence, 4),
        "text": prior.text,
        "provider": prior.provider,
        "granularity": prior.granularity,
    }


def describe_paths(provider: PriorProvider, paths: Iterable[str | Path]) -> Iterator[dict]:
    """One record per image under `paths`: {"path", ...prior_record} or {"path", "error"}."""
    for path in image_paths(paths):
        try:
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist")
            frame = read_rgb(path)
            if min(frame.shape[:2]) < 2:
                raise ValueError(f"{path} is {frame.shape[1]}x{frame.shape[0]} pixels, too small "
                                 "to describe")
            yield {"path": str(path), **prior_record(provider.describe(frame))}
        except (OSError, ValueError, RuntimeError, cv2.error) as exc:
            yield {"path": str(path), "error": str(exc)}


def summarise(records: Iterable[dict]) -> dict:
    """Counts per type said present, images with no weather, errors and mean confidence."""
    records = list(records)
    described = [r for r in records if "error" not in r]
    return {
        "images": len(described),
        "errors": len(records) - len(described),
        "types": {t: sum(t in r["types"] for r in described) for t in TYPES},
        "no_weather": sum(not r["types"] for r in described),
        "mean_confidence": (round(float(np.mean([r["confidence"] for r in described])), 4)
                            if described else None),
    }
