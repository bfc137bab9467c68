"""Synthetic adverse weather on clean frames, with the ground-truth description of what was added.

No paired weather data can be downloaded here, so training pairs are made: a clean photo plus
physically motivated layers from several renderers per type (`weather.RENDERERS`). Every
parameter is drawn widely, because the model is judged on real photos and on generators it never
saw. The severity asked for only steers the renderer: the severity described is measured on
what the layer did to the frame (`measured_severity`), the same way for every renderer, so that
"heavy" means heavy whatever drew it.

All randomness comes from the numpy Generator passed in, so a seed reproduces a sample exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.metrics import structural_similarity

from ..description import LOCATIONS, SEVERITIES, TYPES, WHOLE_FRAME, Degradation, describe
from .weather import RENDERERS, renderer

# Physical order of the layers: the atmosphere first, falling particles in front of it, and the
# drops on the lens last, in front of everything.
_APPLY_ORDER = ("haze", "rain", "snow", "raindrop")

# Mixtures seen in real driving scenes.
MIXTURES = (
    ("rain", "haze"),
    ("snow", "haze"),
    ("rain", "raindrop"),
    ("raindrop", "haze"),
    ("snow", "raindrop"),
    ("rain", "raindrop", "haze"),
)

MIXTURE_P = 0.35  # share of weather recipes that are one of MIXTURES

_CONCENTRATION = 1.6  # a half this many times stronger than its opposite holds the degradation


@dataclass
class Sample:
    """A degraded frame, its clean original, what degrades it, and where (per pixel)."""

    degraded: np.ndarray  # float32 (H, W, 3) in [0, 1]
    clean: np.ndarray  # float32 (H, W, 3) in [0, 1]
    degradations: list[Degradation]
    text: str  # describe(degradations): the training-time prior
    strength: np.ndarray  # float32 (H, W) in [0, 1]: opacity of all weather layers together
    renderers: dict[str, str] = field(default_factory=dict)  # type -> renderer that drew it


def synthesize(
    clean: np.ndarray,
    rng: np.random.Generator,
    degradations: list[Degradation] | None = None,
    renderers: dict[str, str] | None = None,
) -> Sample:
    """Degrade `clean` by `degradations` (a random recipe when None), each type drawn by the
    renderer named in `renderers` (else one of its training renderers at random); severities
    are measured and locations filled in."""
    clean = _as_rgb_float(clean)
    if degradations is None:
        degradations = sample_recipe(rng)
    by_type = {d.type: d for d in degradations}
    if len(by_type) != len(degradations):
        raise ValueError(f"each degradation type may appear once: {degradations}")
    image = clean.copy()
    clear = np.ones(clean.shape[:2], np.float32)  # product of (1 - opacity) over the layers
    located, used = {}, {}
    for name in _APPLY_ORDER:
        if name in by_type:
            names = list(RENDERERS[name])
            used[name] = (renderers or {}).get(name) or names[rng.integers(len(names))]
            before = image
            image, alpha = renderer(name, used[name])(image, by_type[name].severity, rng)
            image = np.clip(image, 0.0, 1.0).astype(np.float32)
            clear *= 1.0 - alpha
            severity = measured_severity(name, before, image)
            located[name] = Degradation(name, severity, locate(alpha))
    listed = [located[t] for t in TYPES if t in located]
    return Sample(image, clean, listed, describe(listed), 1.0 - clear, used)


# How much of the frame's structure a layer changed (1 - SSIM of the luminance before and after
# it), at the edges between severities. Set per type on its first renderer (the one the shipped
# weights grew up on): each edge is the geometric mean of the median changes of the two
# severities beside it, over 192-pixel training crops, so the words kept their meaning; every
# other renderer is read the same way. On a flat frame (a clear sky) a veil changes little
# structure, so haze there reads a tier lighter than it looks.
SEVERITY_EDGES = {
    "rain": (0.057, 0.27),
    "raindrop": (0.046, 0.187),
    "snow": (0.105, 0.24),
    "haze": (0.081, 0.203),
}


def structural_change(before: np.ndarray, after: np.ndarray) -> float:
    """1 - SSIM of the two frames' luminance: 0 untouched, towards 1 the scene hidden."""
    grey = np.array([0.299, 0.587, 0.114], np.float32)
    return 1.0 - float(structural_similarity(before @ grey, after @ grey, data_range=1.0))


def measured_severity(kind: str, before: np.ndarray, after: np.ndarray) -> str:
    """The severity a layer of weather `kind` shows: how much of the frame it hid."""
    low, high = SEVERITY_EDGES[kind]
    change = structural_change(before, after)
    return SEVERITIES[int(change >= low) + int(change >= high)]


def type_probabilities(weights: dict[str, float]) -> np.ndarray:
    """Relative weights of the weather types (missing ones: 1) -> probabilities in TYPES order."""
    unknown = set(weights) - set(TYPES)
    if unknown:
        raise ValueError(f"unknown weather types {sorted(unknown)}; expected some of {TYPES}")
    p = np.array([float(weights.get(t, 1.0)) for t in TYPES])
    if (p < 0).any() or not p.sum() > 0:
        raise ValueError(f"type weights must be >= 0 and not all 0, got {weights}")
    return p / p.sum()


def sample_recipe(
    rng: np.random.Generator,
    severity: str | None = None,
    clean_probability: float = 0.05,
    mixture_probability: float = MIXTURE_P,
    type_p: np.ndarray | None = None,
) -> list[Degradation]:
    """A random recipe: nothing, one type, or a real-world mixture; all at `severity` if given.

    `type_p` (from `type_probabilities`) skews the single-type recipes towards the types a model
    finds hardest; mixtures stay uniform. None: every type equally often.
    """
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    if rng.random() < clean_probability:
        return []
    if rng.random() < mixture_probability:
        types = MIXTURES[rng.integers(len(MIXTURES))]
    elif type_p is None:
        types = (TYPES[rng.integers(len(TYPES))],)
    else:
        types = (TYPES[rng.choice(len(TYPES), p=type_p)],)
    return [Degradation(t, severity or SEVERITIES[rng.integers(3)]) for t in types]


def locate(strength: np.ndarray) -> str:
    """Where a degradation sits: the half of the frame holding most of it, or the whole frame."""
    h, w = strength.shape
    halves = {
        LOCATIONS[1]: (strength[: h // 2].mean(), strength[h - h // 2 :].mean()),
        LOCATIONS[2]: (strength[h - h // 2 :].mean(), strength[: h // 2].mean()),
        LOCATIONS[3]: (strength[:, : w // 2].mean(), strength[:, w - w // 2 :].mean()),
        LOCATIONS[4]: (strength[:, w - w // 2 :].mean(), strength[:, : w // 2].mean()),
    }
    best, (inside, outside) = max(halves.items(), key=lambda kv: kv[1][0] - kv[1][1])
    return best if inside > _CONCENTRATION * outside + 1e-3 else WHOLE_FRAME


# --------------------------------------------------------------------------- helpers


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got {image.dtype}")
    return np.ascontiguousarray(image, dtype=np.float32)
