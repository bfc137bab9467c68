"""`allweather describe` on folders and several files: one JSON line per image, an error line
per bad file (the run goes on), a summary line; and the record every line is made of."""
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from allweather_ros.cli import main
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import TYPES, Degradation
from allweather_ros.media import read_rgb
from allweather_ros.prior.batch import image_paths, prior_record, summarise
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
from allweather_ros.prior.prior import prior_from_text
from allweather_ros.prior.providers import FixedPrior

pytestmark = pytest.mark.usefixtures("one_thread")


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor((rgb * 255 + 0.5).astype(np.uint8),
                                               cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def weather_folder(tmp_path_factory):
    """Synthetic rain, haze and a clean frame (one in a subfolder), a broken PNG and a text
    file that is no image."""
    folder = tmp_path_factory.mktemp("frames")
    photo = cv2.resize(skimage_scenes()[0].load(), (160, 120), interpolation=cv2.INTER_AREA)
    photo = photo.astype(np.float32) / 255.0
    for i, (name, recipe) in enumerate([("rain.png", [Degradation("rain", "heavy")]),
                                        ("haze.jpg", [Degradation("haze", "heavy")])]):
        _write(folder / name, synthesize(photo, np.random.default_rng(i), recipe).degraded)
    _write(folder / "more" / "clean.png", photo)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_folder_gives_a_line_per_image_an_error_line_and_a_summary(weather_folder, capsys):
    assert main(["describe", str(weather_folder), "--provider", "fixed",
                 "--fixed-text", "heavy rain and light fog"]) == 1  # one file failed
    *records, last = _lines(capsys)
    assert [r["path"] for r in records] == [str(weather_folder / n) for n in
                                            ("broken.png", "haze.jpg", "more/clean.png",
                                             "rain.png")]
    broken, *described = records
    assert set(broken) == {"path", "error"} and "broken.png" in broken["error"]
    for record in described:
        assert record["types"] == ["rain", "haze"]
        assert record["severity"] == {"rain": "heavy", "haze": "slight"}
        assert set(record["labels"]) == set(TYPES) and record["confidence"] == 1.0
    assert last == {"summary": {"images": 3, "errors": 1,
                                "types": {"rain": 3, "raindrop": 0, "snow": 0, "haze": 3},
                                "no_weather": 0, "mean_confidence": 1.0}}


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_folder_lines_are_what_the_estimator_says_of_each_file(weather_folder, capsys):
    assert main(["describe", str(weather_folder / "rain.png"), str(weather_folder / "more"),
                 str(weather_folder / "haze.jpg")]) == 0
    *records, last = _lines(capsys)
    estimator = BuiltinEstimator()
    for record, name in zip(records, ["rain.png", "more/clean.png", "haze.jpg"], strict=True):
        assert record == {"path": str(weather_folder / name),
                          **prior_record(estimator.describe(read_rgb(weather_folder / name)))}
    summary = last["summary"]
    assert summary["images"] == 3 and summary["errors"] == 0
    assert summary["types"] == {t: sum(t in r["types"] for r in records) for t in TYPES}
    assert summary["no_weather"] == sum(not r["types"] for r in records)
    assert summary["mean_confidence"] == pytest.approx(
        np.mean([r["confidence"] for r in records]), abs=1e-4)


def test_missing_file_among_several_gets_its_error_line(weather_folder, capsys):
    missing = weather_folder / "gone.png"
    assert main(["describe", str(weather_folder / "rain.png"), str(missing),
                 "--provider", "fixed", "--fixed-text", "clear"]) == 1
    records = _lines(capsys)
    assert records[1] == {"path": str(missing), "error": f"{missing} does not exist"}
    assert records[0]["types"] == [] and records[0]["severity"] == {}
    assert records[2]["summary"]["no_weather"] == 1


def test_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("nothing here")
    assert main(["describe", str(tmp_path)]) == 2
    assert "no images" in capsys.readouterr().err


def test_image_paths_recurse_sorted_and_keep_named_files(weather_folder):
    found = image_paths([weather_folder, weather_folder / "notes.txt"])
    assert [p.relative_to(weather_folder).as_posix() for p in found] == [
        "broken.png", "haze.jpg", "more/clean.png", "rain.png", "notes.txt"]


def test_record_withholds_severity_when_the_prior_does():
    prior = prior_from_text("dense fog and a light drizzle", "fixed")
    assert prior_record(prior)["severity"] == {"rain": "slight", "haze": "heavy"}
    coarse = replace(prior, granularity="type")
    assert prior_record(coarse)["severity"] == {"rain": "none", "haze": "none"}


def test_summary_of_nothing_described():
    assert summarise([{"path": "a.png", "error": "unreadable"}]) == {
        "images": 0, "errors": 1, "types": dict.fromkeys(TYPES, 0), "no_weather": 0,
        "mean_confidence": None}


def test_fixed_provider_record_matches_its_prior():
    prior = FixedPrior("snow").describe(None)
    record = prior_record(prior)
    assert record["types"] == ["snow"] and record["text"] == prior.text
