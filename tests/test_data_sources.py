"""Clean scene sources: folders, videos, bundled photos, and a split that never moves."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from allweather_ros.data.sources import (
    DEBIAN_PHOTOS,
    SPLITS,
    Scene,
    debian_scenes,
    default_scenes,
    folder_scenes,
    scenes_in_split,
    skimage_scenes,
    split_of,
    video_scenes,
)


def write_images(folder: Path, count: int, size=(40, 60)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"scene_{i:03d}.png"), rng.integers(0, 255, (*size, 3), np.uint8))


def test_split_is_pinned_by_name_hash():
    # Pinned: a change here would silently move scenes between training and test.
    assert split_of(Scene("skimage/astronaut", "skimage:astronaut")) == "train"
    dune = "mate-backgrounds/usr/share/backgrounds/mate/nature/Dune.jpg"
    assert split_of(Scene(dune, "")) == "val"
    bridge = "lomiri-wallpapers-16.04/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"
    assert split_of(Scene(bridge, "")) == "test"


def test_splits_are_disjoint_cover_everything_and_roughly_sized(tmp_path):
    write_images(tmp_path / "photos", 200, size=(4, 4))
    scenes = folder_scenes(tmp_path / "photos")
    parts = {s: {x.name for x in scenes_in_split(scenes, s)} for s in SPLITS}
    assert sum(len(p) for p in parts.values()) == len(scenes) == 200
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
    assert not (parts["val"] & parts["test"])
    assert 110 < len(parts["train"]) < 170 and len(parts["val"]) > 15 and len(parts["test"]) > 15
    again = folder_scenes(tmp_path / "photos")
    assert [split_of(s) for s in again] == [split_of(s) for s in scenes]
    with pytest.raises(ValueError):
        scenes_in_split(scenes, "holdout")


def test_folder_scenes_load_rgb_and_shrink(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 2] = 255  # red in OpenCV's BGR
    cv2.imwrite(str(folder / "red.png"), image)
    (folder / "notes.txt").write_text("not an image")
    [scene] = folder_scenes(folder)
    assert scene.name == "mine/red.png"
    full = scene.load()
    assert full.shape == (50, 100, 3) and full.dtype == np.uint8
    assert full[..., 0].min() == 255 and full[..., 2].max() == 0
    assert scene.load(max_side=40).shape == (20, 40, 3)
    with pytest.raises(FileNotFoundError):
        folder_scenes(tmp_path / "missing")


def test_video_frames_share_a_split_within_a_stretch(tmp_path):
    path = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(20):
        writer.write(np.full((24, 32, 3), i * 10, np.uint8))
    writer.release()
    scenes = video_scenes(path, every=5, stretch=10)
    assert [s.frame for s in scenes] == [0, 5, 10, 15]
    assert split_of(scenes[0]) == split_of(scenes[1]) and scenes[0].group != scenes[2].group
    frame = scenes[3].load()
    assert frame.shape == (24, 32, 3) and abs(int(frame.mean()) - 150) < 10
    with pytest.raises(FileNotFoundError):
        video_scenes(tmp_path / "none.avi")


def test_skimage_photos_are_rgb():
    scenes = skimage_scenes()
    assert len(scenes) >= 8
    for scene in scenes[:3]:
        image = scene.load(max_side=64)
        assert image.ndim == 3 and image.shape[2] == 3 and max(image.shape[:2]) == 64


def test_debian_photos_are_found_where_the_fetch_script_puts_them(tmp_path, monkeypatch):
    package, relative = DEBIAN_PHOTOS[0]
    target = tmp_path / package / relative
    target.parent.mkdir(parents=True)
    cv2.imwrite(str(target), np.zeros((8, 8, 3), np.uint8))
    [scene] = debian_scenes(tmp_path)
    assert scene.name == f"{package}/{relative}" and scene.load().shape == (8, 8, 3)
    assert len({name for name in DEBIAN_PHOTOS}) == len(DEBIAN_PHOTOS) >= 30
    write_images(tmp_path / "extra", 2)
    monkeypatch.setattr("allweather_ros.data.sources.DEFAULT_SCENE_DIR", tmp_path)
    names = {s.name for s in default_scenes(tmp_path / "extra")}
    assert {"skimage/astronaut", scene.name, "extra/scene_000.png"} <= names
