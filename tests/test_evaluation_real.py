"""Scoring a prior provider on labelled real photos: the figures on a folder whose answers are
known by hand, the labels file's checks, and `allweather eval --real` end to end."""
import json

import cv2
import numpy as np
import pytest

from allweather_ros.cli import main
from allweather_ros.data.sources import skimage_scenes
from allweather_ros.data.synthesis import synthesize
from allweather_ros.description import TYPES, Degradation
from allweather_ros.evaluation import real
from allweather_ros.media import read_rgb
from allweather_ros.prior.builtin import SHIPPED_WEIGHTS, BuiltinEstimator
from allweather_ros.prior.providers import FixedPrior
from allweather_ros.prior.weather_memory import WeatherMemory

# file -> labels: primary type first, severity None where not judged, {} for a clean photo
LABELS = {
    "rain_heavy.png": {"rain": "heavy"},
    "rain_slight.png": {"rain": "slight", "haze": "moderate"},
    "haze.png": {"haze": "heavy"},
    "clean.png": {},
    "snow.png": {"snow": None},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_labels(folder, labels):
    photos = [{"file": name, "types": types} for name, types in labels.items()]
    (folder / real.LABELS_FILE).write_text(json.dumps({"photos": photos}))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A tiny labelled set, its frames made with the synthesis (snow unjudged)."""
    folder = tmp_path_factory.mktemp("real")
    photo = cv2.resize(skimage_scenes()[1].load(), (128, 96), interpolation=cv2.INTER_AREA)
    photo = photo.astype(np.float32) / 255.0
    for i, (name, types) in enumerate(LABELS.items()):
        recipe = [Degradation(t, s or "moderate") for t, s in types.items()]
        frame = synthesize(photo, np.random.default_rng(i), recipe).degraded
        cv2.imwrite(str(folder / name), cv2.cvtColor((frame * 255 + 0.5).astype(np.uint8),
                                                     cv2.COLOR_RGB2BGR))
    _write_labels(folder, LABELS)
    return folder


def test_figures_of_a_provider_that_always_says_heavy_rain(labelled):
    result = real.evaluate_real(FixedPrior("heavy rain"), labelled)
    assert result["photos"] == 5
    rain, haze, snow, drop = (result["per_type"][t] for t in ("rain", "haze", "snow", "raindrop"))
    assert rain["photos"] == 2 and rain["top1"] == {"rate": 1.0, "n": 2}
    assert rain["recall"]["rate"] == 1.0 and rain["false_alarm"] == {"rate": 1.0, "n": 3}
    assert haze["top1"] == {"rate": 0.0, "n": 1} and haze["recall"] == {"rate": 0.0, "n": 2}
    assert haze["called_no_weather"]["rate"] == 0.0 and snow["top1"]["rate"] == 0.0
    assert drop["photos"] == 0 and drop["top1"] == {"rate": None, "n": 0}
    assert result["top1"] == {"rate": 0.5, "n": 4}
    assert result["clean_called_clean"] == {"rate": 0.0, "n": 1}
    assert result["weather_called_no_weather"]["rate"] == 0.0
    severity = result["severity"]
    assert severity["rain"]["counts"]["slight"]["heavy"] == 1
    assert severity["rain"]["accuracy"] == 0.5 and severity["rain"]["heavy_of_slight"] == 1.0
    assert severity["rain"]["overstated"] == 0.5 and severity["rain"]["understated"] == 0.0
    assert severity["haze"]["overstated"] is None  # never found, so never said too high
    assert severity["haze"]["counts"]["moderate"][real.ABSENT] == 1
    assert severity["haze"]["accuracy"] == 0.0
    assert severity["snow"]["n"] == 0 and severity["snow"]["accuracy"] is None
    # rain said at 0.9 on 5 photos (2 have rain), every other type at 0.1 (3 of 15 have it)
    bins = result["reliability"]["bins"]
    assert [(b["n"], b["positive_share"]) for b in bins] == [(15, 0.2), (5, 0.4)]
    assert result["reliability"]["ece"] == pytest.approx(5 / 20 * 0.5 + 15 / 20 * 0.1)
    assert result["reliability_per_type"]["rain"]["ece"] == pytest.approx(0.5)
    # the same probabilities on every photo rank none above another
    assert result["roc_auc"]["weather_vs_clean"] == 0.5 and result["roc_auc"]["rain"] == 0.5
    assert result["roc_auc"]["raindrop"] is None  # no photo has lens drops
    shown = real.table(result)  # rates with their binomial standard errors
    assert "top-1 over all weather photos: 50 ± 25% (4)" in shown
    assert "ROC AUC: weather vs clean 0.500, rain 0.500, raindrop -," in shown
    assert "| rain | 2 | 100 ± 0% (2) |" in shown


def _record(truth, **labels):
    return {"truth": truth, "labels": {t: labels.get(t, 0.0) for t in TYPES}}


def test_roc_auc_is_the_share_of_pairs_ranked_right():
    records = [_record({"rain": "heavy"}, rain=0.9), _record({"rain": "slight"}, rain=0.4),
               _record({"haze": None}, haze=0.5, rain=0.3), _record({}, rain=0.45),
               _record({}, haze=0.2)]
    auc = real.separation(records)
    # weather 0.9, 0.4, 0.5 against clean 0.45, 0.2: 5 of the 6 pairs ranked right
    assert auc["weather_vs_clean"] == pytest.approx(5 / 6)
    # rain 0.9, 0.4 against 0.3, 0.45, 0.0: 5 of 6; haze 0.5 above all four others
    assert auc["rain"] == pytest.approx(5 / 6) and auc["haze"] == 1.0
    assert auc["snow"] is None  # no photo has snow
    tied = real.separation([_record({"rain": None}, rain=0.5), _record({}, rain=0.5)])
    assert tied["weather_vs_clean"] == 0.5 and tied["rain"] == 0.5


def test_a_provider_that_says_clear_calls_clean_photos_clean(labelled):
    result = real.evaluate_real(FixedPrior("The image is clear."), labelled)
    assert result["clean_called_clean"] == {"rate": 1.0, "n": 1}
    assert result["weather_called_no_weather"] == {"rate": 1.0, "n": 4}
    assert result["per_type"]["rain"]["called_no_weather"]["rate"] == 1.0


class _SizeRecorder(FixedPrior):
    """A fixed provider that notes the size of every frame it is shown."""

    def __init__(self):
        super().__init__("The image is clear.")
        self.sizes = []

    def describe(self, frame=None):
        self.sizes.append(frame.shape[:2])
        return super().describe(frame)


def test_photos_are_read_as_a_smaller_camera_sees_them(labelled):
    provider = _SizeRecorder()
    result = real.evaluate_real(provider, labelled, short_side=48)
    assert provider.sizes == [(48, 64)] * len(LABELS)  # 96x128 photos, aspect kept
    assert result["short_side"] == 48
    assert "each shrunk to a short side of at most 48 pixels" in real.table(result)
    provider.sizes.clear()
    real.evaluate_real(provider, labelled, short_side=200)  # never enlarged
    assert provider.sizes == [(96, 128)] * len(LABELS)
    photo = read_rgb(labelled / "haze.png")
    shrunk = real.at_short_side(photo, 48)  # area averaging: the mean level is kept
    assert shrunk.mean() == pytest.approx(photo.mean(), abs=2e-3)


def test_the_folds_split_the_set_and_are_scored_apart(labelled):
    folds = {p.file.name: real.fold(p) for p in real.load_labels(labelled)}
    assert set(folds.values()) == set(real.FOLDS)  # this set holds photos of both
    provider = FixedPrior("heavy rain")
    results = {f: real.evaluate_real(provider, labelled, only_fold=f) for f in real.FOLDS}
    assert sum(r["photos"] for r in results.values()) == len(LABELS)
    for name, result in results.items():
        assert result["fold"] == name
        assert result["photos"] == sum(f == name for f in folds.values())
    assert f"{results['check']['photos']} photos in {labelled} (the check fold)" in real.table(
        results["check"])
    assert real.evaluate_real(provider, labelled)["fold"] is None
    with pytest.raises(ValueError, match="fold must be one of"):
        real.evaluate_real(provider, labelled, only_fold="train")


def test_a_photo_that_may_not_be_tuned_on_is_always_checked(tmp_path):
    for name, types in LABELS.items():
        photo = real.LabelledPhoto(tmp_path / name, types, calibrate=False)
        assert real.fold(photo) == "check"
    # the split is by file name and labels, so it holds when the set is moved or rebuilt
    def folds(folder):
        return [real.fold(real.LabelledPhoto(folder / n, t)) for n, t in LABELS.items()]

    assert folds(tmp_path / "elsewhere") == folds(tmp_path)


def test_labels_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="real_weather_set.py"):
        real.load_labels(tmp_path)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    _write_labels(tmp_path, {"a.png": {"fog": "heavy"}})
    with pytest.raises(ValueError, match="fog"):
        real.load_labels(tmp_path)
    _write_labels(tmp_path, {"a.png": {"haze": "dense"}})
    with pytest.raises(ValueError, match="dense"):
        real.load_labels(tmp_path)
    _write_labels(tmp_path, {"b.png": {}})
    with pytest.raises(FileNotFoundError, match="b.png"):
        real.load_labels(tmp_path)
    _write_labels(tmp_path, {"a.png": {"snow": None, "haze": "slight"}})
    (photo,) = real.load_labels(tmp_path)
    assert photo.primary == "snow" and photo.calibrate


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_eval_real_command_scores_the_builtin_estimator(labelled, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--real", str(labelled), "--json", "--out", str(out),
                 "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == len(LABELS)
    assert {name: s["photos"] for name, s in result["synthetic"].items()} == {
        "training renderers": 18, "left-out renderer": 18}
    assert sum(b["n"] for b in result["reliability"]["bins"]) == len(LABELS) * len(TYPES)
    saved = json.loads((out / "results.json").read_text())
    estimator = BuiltinEstimator()
    for record in saved["records"]:
        prior = estimator.describe(read_rgb(record["file"]))
        assert record["labels"] == {t: round(prior.labels[t], 4) for t in TYPES}
        assert record["truth"] == LABELS[record["file"].rsplit("/", 1)[1]]
    diagram = cv2.imread(str(out / "reliability.png"))
    assert diagram is not None and diagram.shape[0] > 300
    assert main(["eval", "--real", str(labelled), "--repeats", "1"]) == 0
    shown = capsys.readouterr().out
    assert "clean photos called clean" in shown
    assert "| rain | " in shown and "left-out renderer" in shown
    assert "newest of a drive, pooled with up to 3 others" in shown  # prior.memory's default
    assert main(["eval", "--real", str(labelled), "--repeats", "1", "--json",
                 "--short-side", "64"]) == 0
    assert json.loads(capsys.readouterr().out)["short_side"] == 64
    assert main(["eval", "--real", str(labelled), "--repeats", "1", "--json",
                 "--fold", "check"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["fold"] == "check" and 0 < checked["photos"] < len(LABELS)


def test_eval_real_argument_errors(labelled, capsys):
    assert main(["eval", "--real", str(labelled), "--synthetic"]) == 2
    assert "one of" in capsys.readouterr().err
    assert main(["eval", "--real", str(labelled), "--provider", "none"]) == 2
    assert "--provider none" in capsys.readouterr().err


def test_severity_said_too_low_is_counted(labelled):
    haze = real.evaluate_real(FixedPrior("light fog"), labelled)["severity"]["haze"]
    assert haze["counts"]["heavy"]["slight"] == 1 and haze["counts"]["moderate"]["slight"] == 1
    assert haze["understated"] == 1.0 and haze["overstated"] == 0.0 and haze["accuracy"] == 0.0


@pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="no shipped estimator weights")
def test_drives_pool_each_photo_with_others_of_its_source_and_weather(tmp_path):
    photo = cv2.resize(skimage_scenes()[1].load(), (128, 96), interpolation=cv2.INTER_AREA)
    photo = photo.astype(np.float32) / 255.0
    labels = {"a/r1.png": {"rain": "heavy"}, "a/r2.png": {"rain": "moderate"},
              "a/r3.png": {"rain": "heavy"}, "a/clean.png": {}, "b/r4.png": {"rain": "heavy"}}
    for i, (name, types) in enumerate(labels.items()):
        recipe = [Degradation(t, s) for t, s in types.items()]
        frame = synthesize(photo, np.random.default_rng(10 + i), recipe).degraded
        (tmp_path / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor((frame * 255 + 0.5).astype(np.uint8),
                                                       cv2.COLOR_RGB2BGR))
    _write_labels(tmp_path, labels)
    estimator = BuiltinEstimator()
    photos = real.load_labels(tmp_path)
    estimates = [estimator.estimate(read_rgb(photo.file)) for photo in photos]
    records = real.drive_records(estimator, photos, tmp_path, 4, estimates)
    by_name = {r["file"].split(str(tmp_path) + "/")[1]: r for r in records}
    # a/'s three rain photos pool one another; the clean photo and b/'s photo stand alone
    assert {n: r["pooled"] for n, r in by_name.items()} == {
        "a/r1.png": 3, "a/r2.png": 3, "a/r3.png": 3, "a/clean.png": 1, "b/r4.png": 1}
    memory = WeatherMemory(4)
    for name in ("a/r1.png", "a/r2.png", "a/r3.png"):
        pooled = memory.pool(estimator.estimate(read_rgb(tmp_path / name))[0])
    for name in ("a/r1.png", "a/r2.png", "a/r3.png"):  # the same three readings, any order
        assert by_name[name]["labels"] == pytest.approx(
            {t: round(float(pooled[i]), 4) for i, t in enumerate(TYPES)}, abs=2e-4)
    alone = estimator.describe(read_rgb(tmp_path / "a/clean.png"))
    assert by_name["a/clean.png"]["text"] == alone.text
    result = real.evaluate_real(estimator, tmp_path, drive_readings=4)
    assert result["drives"]["readings"] == 4 and result["drives"]["photos"] == 5
    assert "drives" not in real.evaluate_real(estimator, tmp_path)  # one reading: no drive
