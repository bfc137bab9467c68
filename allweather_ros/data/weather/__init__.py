"""Weather renderers, several per type, each (image, severity, rng) -> (image, opacity).

Several clearly different generators per type keep the network from learning one renderer's
look instead of the weather; `EXTERNAL` holds generators written by others (albumentations),
never used in training, on which `allweather eval --synthetic` measures generalisation
(leave-one-renderer-out).
"""
from __future__ import annotations

from .haze import coloured_haze, depth_haze, lamplit_mist, patchy_fog
from .lens import beads, defocused_blobs, drop_field, refracting_drops, running_trails, water_film
from .rain import downpour, drizzle, gusts, layered_streaks, refracted_streaks, splashing
from .snow import blizzard, layered_flakes, near_flakes, overcast_flakes

RENDERERS = {
    "rain": {"streaks": layered_streaks, "drizzle": drizzle, "downpour": downpour,
             "refracted": refracted_streaks, "splashing": splashing, "gusts": gusts},
    "raindrop": {"refraction": refracting_drops, "blobs": defocused_blobs,
                 "trails": running_trails, "field": drop_field, "beads": beads, "film": water_film},
    "snow": {"flakes": layered_flakes, "blizzard": blizzard, "near": near_flakes,
             "overcast": overcast_flakes},
    "haze": {"depth": depth_haze, "patchy": patchy_fog, "smog": coloured_haze,
             "lamplit": lamplit_mist},
}
EXTERNAL = "albumentations"  # the left-out renderer of every type (weather.external)


def renderer(kind: str, name: str):
    """The renderer `name` of weather `kind`; EXTERNAL needs the optional albumentations."""
    if name == EXTERNAL:
        from .external import EXTERNAL_RENDERERS
        return EXTERNAL_RENDERERS[kind]
    try:
        return RENDERERS[kind][name]
    except KeyError:
        known = [*RENDERERS.get(kind, {}), EXTERNAL]
        raise ValueError(f"unknown {kind} renderer {name!r}; expected one of {known}") from None
