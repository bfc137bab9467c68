"""tools/real_restoration_check.py on a tiny labelled set: figures per type and severity for
each weights file and working resolution, a heavy veil changed far more than a clean photo and
read as less hazy once restored, the same weights named twice give the same figures, and the
contact sheet holds a row per type."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import Degradation
from allweather_ros.evaluation import real
from allweather_ros.model.weights import PACKAGED

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from real_restoration_check import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _labelled_set(folder: Path, weather: str = "haze", scene: int = 1,
                  size: tuple[int, int] = (128, 96)) -> None:
    """A clean photo and the same scene under heavy `weather`, labelled."""
    photo = cv2.resize(skimage_scenes()[scene].load(), size, interpolation=cv2.INTER_AREA)
    photo = photo.astype(np.float32) / 255.0
    labels = {"clean.png": {}, f"{weather}.png": {weather: "heavy"}}
    for i, (name, types) in enumerate(labels.items()):
        recipe = [Degradation(t, s) for t, s in types.items()]
        frame = synthesize(photo, np.random.default_rng(i), recipe).degraded
        cv2.imwrite(str(folder / name), cv2.cvtColor((frame * 255 + 0.5).astype(np.uint8),
                                                     cv2.COLOR_RGB2BGR))
    (folder / real.LABELS_FILE).write_text(json.dumps(
        {"photos": [{"file": n, "types": t} for n, t in labels.items()]}))


def test_a_veiled_photo_changes_more_than_a_clean_one_and_the_figures_repeat(tmp_path, capsys):
    _labelled_set(tmp_path, scene=4)  # coffee: read as clear (a brick wall reads as slight haze)
    shipped = str(PACKAGED / "rt.safetensors")
    out, sheet = tmp_path / "figures.json", tmp_path / "sheet.jpg"
    assert main(["--real", str(tmp_path), "--weights", "", shipped, "--json", str(out),
                 "--sheet", str(sheet), "--per-type", "1"]) == 0
    result = json.loads(out.read_text())
    assert sorted(result) == ["clean", "haze", "haze/heavy"]
    for group in result.values():
        assert group["shipped"] == group[shipped]  # the same network, the same figures
        assert all(np.isfinite([r["change"], r["shift"]]).all() for r in group.values())
    clean, haze = result["clean"]["shipped"], result["haze/heavy"]["shipped"]
    assert clean["n"] == haze["n"] == 1
    assert haze["change"] > 3 * max(clean["change"], 0.1)
    assert "| haze/heavy | 1 |" in capsys.readouterr().out
    picture = cv2.imread(str(sheet))  # two rows (a photo of each type), input and two outputs
    assert picture.shape[0] == 2 * (160 + 4) and picture.shape[1] == 3 * 213 + 2 * 4


def test_working_resolutions_side_by_side_and_the_weather_left(tmp_path, capsys):
    _labelled_set(tmp_path, "rain", size=(320, 240))
    out = tmp_path / "figures.json"
    assert main(["--real", str(tmp_path), "--max-sides", "0", "160", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    whole, small = result["rain/heavy"]["shipped @ 0"], result["rain/heavy"]["shipped @ 160"]
    assert whole["weather_in"] == small["weather_in"] > 0.9  # the estimator reads rain ...
    assert whole["weather_left"] < 0.5  # ... and little of it once restored whole, ...
    # ... or at half the size, the streaks held out as the correction is carried back
    assert small["weather_left"] < 0.5 and small["weather_left"] != whole["weather_left"]
    for side in ("0", "160"):  # the clean photo's reading is its own, restored or not
        clean = result["clean"][f"shipped @ {side}"]
        assert abs(clean["weather_left"] - clean["weather_in"]) < 0.1
    assert "weather left" in capsys.readouterr().out


def test_each_photo_s_readings_and_snow_restored_at_the_snow_side(tmp_path):
    """--photos: a line for each photo and variant; with a snow side of 320, a 480x360 photo
    the estimator says holds heavy snow is restored at it, the clean one whole."""
    # rocket: no bright slanted bar below the middle that the snow side would take for a road
    _labelled_set(tmp_path, "snow", scene=8, size=(480, 360))
    figures, photos = tmp_path / "figures.json", tmp_path / "photos.jsonl"
    assert main(["--real", str(tmp_path), "--json", str(figures), "--photos", str(photos),
                 "--processing-max-side-snow", "320"]) == 0
    records = {r["file"]: r for r in map(json.loads, photos.read_text().splitlines())}
    assert sorted(records) == ["clean.png", "snow.png"]
    snow, clean = records["snow.png"], records["clean.png"]
    assert snow["groups"] == ["snow", "snow/heavy"] and snow["variant"] == "shipped"
    assert snow["weather_in"] > 0.5 and snow["working_side"] == 320
    assert clean["working_side"] == 480
    result = json.loads(figures.read_text())
    assert result["snow/heavy"]["shipped"]["weather_left"] == snow["weather_left"]
