"""tools/transient_check.py: streams against their truth (transients on and off, the same
network), and a folder of real consecutive frames with its contact sheet."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_transients import rained, scene

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import transient_check  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_streams_score_the_network_alone_and_with_transients(monkeypatch, capsys):
    monkeypatch.setattr(transient_check, "cases",
                        lambda: [("clean", None, None), ("rain", "drizzle", "moderate")])
    # speed 0: a still shot (this scene's shot zooms, and the stage stands aside while it does)
    report = transient_check.check_synthetic(transient_check.argparse.Namespace(
        split="val", scenes=1, frames=5, speed=0.0, transient_frames=2))
    assert sorted(report) == ["clean", "rain:drizzle:moderate"]
    clean, rain = report["clean"], report["rain:drizzle:moderate"]
    assert clean["frames"] == rain["frames"] == 2  # the first three frames only fill the past
    assert clean["input"] == 100.0 and clean["gain"] == 0.0 and clean["worse"] == 0
    assert rain["input"] < rain["network"] < 100.0
    assert rain["applied"] == 1.0 and rain["share"] > 0 and rain["gain"] > 0


def test_a_clip_of_falling_streaks_is_taken_back_a_still_clean_one_is_not(tmp_path, capsys):
    for name, streaks in (("rain", True), ("clean", False)):
        folder = tmp_path / name
        folder.mkdir()
        for t in range(5):
            frame = rained(scene(), seed=t)[0] if streaks else scene()
            cv2.imwrite(str(folder / f"{t:03d}.png"),
                        cv2.cvtColor((frame * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
    sheet = tmp_path / "sheet.png"
    assert transient_check.main(["--clip", str(tmp_path / "rain"), "--sheet", str(sheet)]) == 0
    rain = json.loads(capsys.readouterr().out)
    assert transient_check.main(["--clip", str(tmp_path / "clean")]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert rain["frames"] == clean["frames"] == 5
    assert rain["applied"] == 1.0 and rain["share"] > 0.001 and rain["change_levels"] > 0.1
    assert clean["share"] == 0.0 and clean["change_levels"] == 0.0
    assert cv2.imread(str(sheet)).shape == (2 * 240, 3 * 320, 3)  # two frames, three columns


def test_forward_drives_count_the_lane_markings_the_suppression_changed():
    report = transient_check.check_drive(transient_check.argparse.Namespace(
        split="val", scenes=1, frames=5, speed=1.0, transient_frames=3))
    assert sorted(report) == ["drive, 0.3 m a frame", "drive, 1 m a frame"]
    for drive in report.values():
        assert drive["frames"] == 2
        assert drive["lane_pixels_changed"] <= drive["worst_frame_lane_pixels_changed"] < 0.01
        assert drive["pixels_changed"] < 0.001
        assert drive["transients"] > 25 and abs(drive["transients"] - drive["network"]) < 0.5
