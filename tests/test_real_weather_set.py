"""tools/real_weather_set.py: the committed manifest is well formed, and a set is rebuilt from a
local clone at the recorded commit (shrunk, with labels the evaluation reads)."""
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from allweather_ros.description import SEVERITIES, TYPES
from allweather_ros.evaluation import real

TOOL = Path(__file__).resolve().parent.parent / "tools" / "real_weather_set.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("real_weather_set", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_manifest_is_well_formed(tool):
    manifest = tool.load_manifest()
    assert any("never to train" in line for line in manifest["about"])
    assert all(re.fullmatch(r"[0-9a-f]{40}", s["commit"]) for s in manifest["sources"].values())
    for pair in manifest["pairs"]:
        assert set(pair) == {"repo", "type", "input", "gt", "note"} and pair["type"] in TYPES
    for photo in manifest["photos"]:
        assert set(photo) <= {"repo", "path", "types", "note", "calibrate"}, photo
        assert all(t in TYPES and (s is None or s in SEVERITIES)
                   for t, s in photo["types"].items()), photo
    names = [tool.output_name(p["repo"], p["path"]) for p in manifest["photos"]]
    assert len(set(names)) == len(names)
    assert tool.LABELS_FILE == real.LABELS_FILE


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path):
    """A clone of "someone/photos" with a large grey photo committed, then overwritten white."""
    repo = tmp_path / "mirrors" / "someone+photos"
    (repo / "img").mkdir(parents=True)
    _git(repo, "init", "-q")
    cv2.imwrite(str(repo / "img" / "street.png"), np.full((1200, 1600, 3), 100, np.uint8))
    cv2.imwrite(str(repo / "img" / "street_clean.png"), np.full((1200, 1600, 3), 90, np.uint8))
    cv2.imwrite(str(repo / "img" / "small.png"), np.full((100, 100, 3), 90, np.uint8))
    (repo / "img" / "lfs.jpg").write_text("version https://git-lfs.github.com/spec/v1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "grey")
    first = _git(repo, "rev-parse", "HEAD")
    cv2.imwrite(str(repo / "img" / "street.png"), np.full((1200, 1600, 3), 255, np.uint8))
    _git(repo, "commit", "-q", "-am", "white")
    return tmp_path / "mirrors", first


def _manifest(commit, *paths):
    return {"about": ["test"], "sources": {"someone/photos": {"commit": commit}},
            "photos": [{"repo": "someone/photos", "path": p, "types": {"rain": "heavy"}}
                       for p in paths]}


def test_build_extracts_the_recorded_commit_shrunk_with_labels(tool, mirror, tmp_path):
    mirrors, first = mirror
    out = tmp_path / "set"
    assert tool.build(mirrors, out, 800, _manifest(first, "img/street.png")) == 1
    image = cv2.imread(str(out / "someone+photos" / "img" / "street.jpg"))
    assert image.shape == (600, 800, 3) and abs(float(image.mean()) - 100) < 2
    (photo,) = real.load_labels(out)
    assert photo.types == {"rain": "heavy"} and photo.primary == "rain"
    source = json.loads((out / real.LABELS_FILE).read_text())["photos"][0]["source"]
    assert source == {"repo": "someone/photos", "commit": first, "path": "img/street.png"}


def test_pairs_are_extracted_as_a_paired_dataset_the_evaluation_reads(tool, mirror, tmp_path):
    from allweather_ros.data.datasets import PairedFolderDataset

    mirrors, first = mirror
    pair = {"repo": "someone/photos", "type": "haze", "input": "img/street.png",
            "gt": "img/street_clean.png", "note": "test"}
    manifest = {**_manifest(first), "pairs": [pair]}
    assert tool.build_pairs(mirrors, tmp_path / "pairs", 800, manifest) == 1
    (item,) = PairedFolderDataset(tmp_path / "pairs" / "haze", crop=None)
    assert item["types"].tolist() == [0, 0, 0, 1] and item["degraded"].shape == (3, 600, 800)
    assert abs(float(item["degraded"].mean() - item["clean"].mean()) * 255 - 10) < 1
    with pytest.raises(ValueError, match="differ in size"):
        tool.build_pairs(mirrors, tmp_path / "bad", 800,
                         {**manifest, "pairs": [{**pair, "input": "img/small.png"}]})


def test_missing_mirror_says_how_to_clone(tool, tmp_path):
    with pytest.raises(FileNotFoundError, match="git clone https://github.com/someone/photos"):
        tool.build(tmp_path / "empty", tmp_path / "set", 1024, _manifest("a" * 40, "x.png"))


def test_lfs_pointer_and_missing_path_are_named(tool, mirror, tmp_path):
    mirrors, first = mirror
    with pytest.raises(ValueError, match="LFS"):
        tool.build(mirrors, tmp_path / "a", 1024, _manifest(first, "img/lfs.jpg"))
    with pytest.raises(FileNotFoundError, match="img/none.png"):
        tool.build(mirrors, tmp_path / "b", 1024, _manifest(first, "img/none.png"))


def test_list_counts_the_committed_set(tool, capsys):
    assert tool.main(["list"]) == 0
    printed = capsys.readouterr().out
    assert re.match(r"\d+ photos\nprimary type: ", printed)
