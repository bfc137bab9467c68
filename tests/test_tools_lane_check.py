"""tools/lane_check.py: lane markings' contrast on rendered drives, in the input and through
the default pipeline, clean drives told a description and rainy ones told the truth."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import lane_check  # noqa: E402

from allweather_ros.data.road import road_view  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_markings_are_scored_against_the_clean_view(monkeypatch):
    monkeypatch.setattr(lane_check, "CASES", [("rain", "heavy")])
    report = lane_check.check(lane_check.argparse.Namespace(
        split="val", scenes=1, views=2, weights="", clip="", processing_max_side=640, snow_side=0))
    clear = report["clean, told"]["no weather"]
    assert clear == {"views": 2, "input": 1.0, "restored": 1.0, "lowest": 1.0}
    told_heavy = report["clean, told"]["heavy rain"]
    assert told_heavy["input"] == 1.0 and told_heavy["restored"] < 1.0  # a wrong word costs
    rainy = report["weather, told the truth"]["heavy rain"]
    assert rainy["views"] == 2 and 0.0 < rainy["input"] < 0.95  # the rain hides the markings
    left_out = report["left-out renderer, told the truth"]["heavy rain"]
    assert left_out["views"] == 2 and left_out["input"] < 0.95 and left_out != rainy


def test_a_real_clip_has_its_markings_found_on_the_road(tmp_path, monkeypatch):
    """--clip: frames of a clean dash-cam clip, the markings found as thin bright lines below
    the road's top; bright wide things and anything above it are not markings."""
    photo = np.full((300, 400, 3), 0.4, np.float32)
    for number in range(3):
        frame, truth = road_view(3.0 * number, photo, (240, 320))
        frame[200:230, 20:80] = 0.95  # a white car's side: bright, but wide
        cv2.imwrite(str(tmp_path / f"frame_{number}.png"),
                    (frame[:, :, ::-1] * 255).round().astype(np.uint8))
        found = lane_check.real_markings(frame, 0.45)
        assert (found & truth).sum() > 0.6 * truth[108:].sum()  # most markings below the top
        assert not found[200:230, 25:75].any() and not found[:108].any()
    monkeypatch.setattr(lane_check, "CASES", [("snow", "heavy")])
    report = lane_check.check(lane_check.argparse.Namespace(
        clip=str(tmp_path), frames=2, road_top=0.45, weights="", processing_max_side=160,
        snow_side=0))
    assert report["clean, told"]["no weather"]["views"] == 2
    assert report["weather, told the truth"]["heavy snow"]["input"] < 0.95
    video = cv2.VideoWriter(str(tmp_path / "drive.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                            (320, 240))
    for path in sorted(tmp_path.glob("frame_*.png")):
        video.write(cv2.imread(str(path)))
    video.release()
    frames = lane_check.clip_frames(tmp_path / "drive.avi", 2)  # the first and the last
    assert len(frames) == 2 and frames[0].shape == (240, 320, 3)
    assert np.abs(frames[1] - lane_check.read_rgb(tmp_path / "frame_2.png")).mean() < 0.02
    with pytest.raises(SystemExit, match="neither a folder of images nor a video"):
        lane_check.clip_frames(tmp_path / "frame_0.png", 2)
    with pytest.raises(SystemExit, match="no lane markings"):
        lane_check.check(lane_check.argparse.Namespace(clip=str(tmp_path), frames=2,
                                                       road_top=1.0, weights="",
                                                       processing_max_side=640, snow_side=0))


def test_the_marking_keepers_cost_is_counted_on_both_renderer_sets(capsys):
    assert lane_check.main(["--cost", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["training renderers", "left-out renderer"]
    assert all("31 frames, the marking keeper acted on" in line for line in lines)
