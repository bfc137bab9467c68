"""The scene's lights (lights.py): small lights the network dimmed are put back, whatever the
description said; weather-like white blobs in daylight and ordinary scene content are not."""
import cv2
import numpy as np
import pytest
from skimage import data

from allweather_ros.lights import keep_lights
from allweather_ros.pipeline import Pipeline, load_model
from allweather_ros.prior.prior import prior_from_text
from allweather_ros.runtime.torch_backend import TorchBackend, TorchPriorEncoding

COLOURS = {"red": (1.0, 0.15, 0.1), "amber": (1.0, 0.65, 0.1), "green": (0.3, 1.0, 0.6),
           "white": (1.0, 1.0, 1.0)}


def street(brightness: float) -> np.ndarray:
    """A real photo at 320x240, dimmed to `brightness` (0.25: a scene at night)."""
    photo = cv2.resize(data.astronaut(), (320, 240), interpolation=cv2.INTER_AREA)
    return photo.astype(np.float32) / 255.0 * brightness


def lit(frame: np.ndarray, radius: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`frame` with a small light of each colour (3 pixels across for radius 1), and where."""
    frame, where = frame.copy(), {}
    for number, (name, colour) in enumerate(COLOURS.items()):
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.circle(mask, (60 + 60 * number, 40), radius, 1, -1)
        where[name] = mask.astype(bool)
        frame[where[name]] = colour
    return frame, where


def lights(frame: np.ndarray) -> np.ndarray:
    """Where keep_lights finds lights: what it puts back of a restored frame dimmed all over."""
    dimmed = frame * 0.5
    return np.abs(keep_lights(frame, dimmed)[0] - dimmed).max(axis=2) > 0.2


def test_coloured_lights_and_white_sources_at_night_are_lights():
    night, where = lit(street(0.25))
    found = lights(night)
    for name, mask in where.items():
        assert found[mask].all(), name
    assert found.sum() == sum(mask.sum() for mask in where.values())  # nothing else
    day, where = lit(street(0.6))  # an overcast day
    found = lights(day)
    assert all(found[where[name]].all() for name in ("red", "amber", "green"))
    assert not found[where["white"]].any()  # a white blob by day may be a flake or a streak


def test_a_wide_or_dull_coloured_thing_is_not_a_light():
    frame = street(0.25)
    frame[100:140, 100:160] = COLOURS["red"]  # a red car: wider than a light
    frame[200:203, 40:43] = (0.5, 0.1, 0.1)  # a dull red point: no brighter than a sign
    assert not lights(frame).any()


def test_rain_lit_by_a_lamp_at_night_is_not_a_light():
    """Streaks lit sodium orange or clipped white are as bright and coloured as lights, but
    long and nearer upright than level; lights beside them (and a level light bar) still are."""
    frame, where = lit(street(0.25))
    streaks = np.zeros(frame.shape[:2], np.uint8)
    for x in range(20, 300, 23):  # 1 pixel wide, 12-20 long, slanted by up to about 20 degrees
        cv2.line(streaks, (x, 80 + x % 60), (x + (x % 13) - 6, 96 + x % 60 + x % 5), 1)
    streaks = streaks.astype(bool)
    frame[streaks & (np.arange(320) < 160)] = (1.0, 0.62, 0.2)  # sodium-lit
    frame[streaks & (np.arange(320) >= 160)] = 1.0  # clipped white by a headlight
    frame[200:203, 100:130] = COLOURS["red"]  # a level light bar: kept
    found = lights(frame)
    assert not found[streaks].any()
    assert all(found[mask].all() for mask in where.values()) and found[200:203, 100:130].all()


def test_only_the_lights_that_the_restorer_dimmed_are_put_back():
    frame, where = lit(street(0.25))
    restored = cv2.GaussianBlur(frame, (0, 0), 2.0)  # every light smeared into its surround
    restored[where["red"]] = frame[where["red"]]  # but the red one, which it kept
    kept, share = keep_lights(frame, restored)
    dimmed = sum(where[name].sum() for name in ("amber", "green", "white"))
    assert share == dimmed / where["red"].size  # the lights put back, of the frame's pixels
    for name in ("amber", "green", "white"):
        assert np.allclose(kept[where[name]], frame[where[name]]), name
    assert np.array_equal(kept[where["red"]], restored[where["red"]])
    away = ~cv2.dilate(sum(m.astype(np.uint8) for m in where.values()),
                       np.ones((7, 7), np.uint8)).astype(bool)
    assert np.array_equal(kept[away], restored[away])


@pytest.mark.parametrize("told", ["heavy rain streaks across the whole frame",
                                  "heavy falling snow across the whole frame"])
def test_the_shipped_restorer_told_heavy_weather_keeps_a_night_scenes_lights(told, one_thread):
    """Told heavy rain or snow of a clean night street, the shipped network alone kept about
    half of a 3-pixel light's contrast, the lowest none (model card)."""
    from allweather_ros.prior.text_encoder import TextEncoder

    model, encoder = load_model(), TextEncoder()
    pipeline = Pipeline(TorchPriorEncoding(model), TorchBackend(model), encoder,
                        initial=prior_from_text(f"The image is degraded by {told}.", "fixed",
                                                encoder))
    background = street(0.25)
    frame, where = lit(background)
    result = pipeline.process(frame)
    restored = result.restored
    assert result.lights_share > 0  # what /diagnostics reports as the camera's lights_share
    for name, mask in where.items():
        light = np.abs(frame[mask] - background[mask]).mean()
        assert np.abs(restored[mask] - frame[mask]).mean() < 0.05 * light, name
