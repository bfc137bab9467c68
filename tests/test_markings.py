"""Road markings kept (allweather_ros/markings.py): a lane marking the network dimmed gets its
contrast back; falling streaks, a field of parallel slanted streaks, upright poles and what lies
in the upper half of the frame are left to the network, and so is a marking it left legible."""
import cv2
import numpy as np
import pytest

from allweather_ros.data.road import road_view
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.markings import keep_markings, marking_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def road(height: int = 180, width: int = 320) -> np.ndarray:
    """Dark asphalt with a little grain."""
    grain = np.random.default_rng(0).random((height, width, 1)).astype(np.float32)
    return np.repeat(0.25 + 0.05 * grain, 3, axis=2)


def bar(frame: np.ndarray, start, end, width: int = 4, level: float = 0.9) -> np.ndarray:
    """`frame` with a bright straight bar from `start` to `end` ((x, y) pixels)."""
    out = frame.copy()
    cv2.line(out, start, end, (level, level, level), width)
    return out


def lift(image: np.ndarray, where: np.ndarray) -> float:
    """Mean brightness on `where` over the frame's median: a marking's contrast."""
    return float(image[where].mean() - np.median(image))


def test_a_marking_the_network_dimmed_gets_its_contrast_back():
    frame = bar(road(), (200, 175), (260, 100))  # a lane line, slanted by perspective
    line = frame[..., 0] > 0.5
    restored = np.where(line[..., None], 0.5, frame * 0.95).astype(np.float32)  # dimmed
    kept, share = keep_markings(frame, restored)
    assert share > 0
    assert lift(kept, line) == pytest.approx(lift(frame, line), abs=0.03)
    assert lift(restored, line) < 0.7 * lift(frame, line)
    away = ~cv2.dilate(line.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    np.testing.assert_array_equal(kept[away], restored[away])  # the road keeps its restoration


def test_a_marking_the_network_left_legible_is_left_as_restored():
    """Haze taken off lifts a marking over the road: nothing to give back."""
    frame = bar(road(), (200, 175), (260, 100), level=0.6)
    restored = np.clip((frame - 0.2) * 1.6, 0, 1).astype(np.float32)  # more contrast
    kept, _ = keep_markings(frame, restored)
    np.testing.assert_array_equal(kept, restored)


@pytest.mark.parametrize("case", ["thin streaks", "upright pole", "upper half", "short dash"])
def test_what_is_not_a_marking_is_left_to_the_network(case):
    frame = road()
    if case == "thin streaks":  # 1-pixel rain streaks, upright and slanted
        for x in range(10, 310, 12):
            frame = bar(frame, (x, 100), (x + (x % 3) * 8, 170), width=1)
    elif case == "upright pole":
        frame = bar(frame, (150, 100), (153, 178), width=5)
    elif case == "upper half":
        frame = bar(frame, (200, 80), (260, 5))
    else:
        frame = bar(frame, (200, 170), (208, 160))
    assert not marking_mask(frame).any()


def test_a_field_of_parallel_slanted_streaks_is_weather():
    """Wind-driven rain: many slanted bright streaks, all parallel; one of them alone would
    pass for a lane line."""
    frame = road()
    for x in range(0, 300, 25):
        frame = bar(frame, (x, 175), (x + 40, 100), width=3)
    assert not marking_mask(frame).any()
    assert marking_mask(bar(road(), (0, 175), (40, 100), width=3)).any()


def test_the_shipped_restorer_told_heavy_rain_keeps_a_drives_lane_markings(pipeline_config,
                                                                           monkeypatch):
    """A rendered road (data/road.py) told heavy rain: the network alone dims its markings;
    the pipeline gives their contrast back and says how much of the frame that was."""
    from dataclasses import replace

    import allweather_ros.pipeline as module

    photo = skimage_scenes()[0].load(max_side=480).astype(np.float32) / 255.0
    clean, markings = road_view(3.0, photo)
    told = "The image is degraded by heavy rain streaks across the whole frame."
    pipeline = module.build_pipeline(replace(pipeline_config, weights="", provider="fixed",
                                             fixed_text=told), asynchronous=False)
    try:
        pipeline.refresh_now(clean)
        result = pipeline.process(clean)
        monkeypatch.setattr(module, "keep_markings", lambda frame, restored, mask: (restored, 0.0))
        without = pipeline.process(clean).restored
    finally:
        pipeline.close()
    assert result.markings_share > 0
    assert lift(without, markings) < 0.95 * lift(clean, markings)
    assert lift(result.restored, markings) > lift(without, markings) + 0.02
